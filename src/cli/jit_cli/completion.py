"""``jit completion bash|zsh|fish``: shell completion scripts generated from the parser.

Commands and each command's options come from the argparse parser itself, so the scripts
never drift from the CLI. zsh uses bash's completion through ``bashcompinit``.
"""

from __future__ import annotations

import argparse
import shlex

SHELLS = ("bash", "zsh", "fish")


def commands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, list[str]]]:
    """{command: (help, [option strings])} from the parser's subcommands."""
    found: dict[str, tuple[str, list[str]]] = {}
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            options = sorted(
                option
                for sub_action in sub._actions
                for option in sub_action.option_strings
                if option.startswith("--")
            )
            found[name] = (helps.get(name, ""), options)
    return found


def _global_options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    )


def bash(parser: argparse.ArgumentParser) -> str:
    table = commands(parser)
    cases = "\n".join(
        f"        {name}) opts={shlex.quote(' '.join(options))} ;;"
        for name, (_, options) in table.items()
    )
    return f"""# jit bash completion: eval "$(jit completion bash)"
_jit() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" command="" opts="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) command="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    if [[ -z "$command" ]]; then
        if [[ "$cur" == -* ]]; then
            opts={shlex.quote(" ".join(_global_options(parser)))}
        else
            opts={shlex.quote(" ".join(table))}
        fi
    else
        case "$command" in
{cases}
        esac
    fi
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _jit jit
"""


def zsh(parser: argparse.ArgumentParser) -> str:
    return (
        '# jit zsh completion: eval "$(jit completion zsh)"\n'
        "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser)
    )


def _fish_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(parser: argparse.ArgumentParser) -> str:
    table = commands(parser)
    lines = ["# jit fish completion: jit completion fish | source", "complete -c jit -f"]
    names = " ".join(table)
    for name, (help_text, options) in table.items():
        lines.append(
            f"complete -c jit -n 'not __fish_seen_subcommand_from {names}' "
            f"-a {name} -d {_fish_text(help_text)}"
        )
        for option in options:
            lines.append(f"complete -c jit -n '__fish_seen_subcommand_from {name}' -l {option[2:]}")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](parser)
