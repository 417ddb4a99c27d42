"""``jit completion bash|zsh|fish``: shell completion scripts generated from the parser.

Commands, each command's options and which options take a value come from the argparse
parser itself, so the scripts never drift from the CLI. zsh uses bash's completion through
``bashcompinit``.

A command's first positional is completed too: its choices when it has some (``jit cache
clear``), else, for a PROFILE or a GRANT_ID, the names the hidden ``jit __complete KINDS
PREFIX WORD...`` prints (:data:`jit_cli.entry.COMPLETE`, answered from the cache before the
rest of the CLI is imported: profile names ``jit profiles`` remembered, grants of live cached
sessions). The words already typed go along, so ``--api-url``/``--broker``/``--aws-profile``
choose the broker and signer as they would for the command itself.
"""

from __future__ import annotations

import argparse
import shlex

from jit_cli.entry import COMPLETE

SHELLS = ("bash", "zsh", "fish")
# A positional whose metavar names one of these is completed with the remembered names.
_DYNAMIC = (("GRANT_ID", "grants"), ("PROFILE", "profiles"))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    found: dict[str, tuple[str, argparse.ArgumentParser]] = {}
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            found[name] = (helps.get(name, ""), sub)
    return found


def _long_options(parser: argparse.ArgumentParser, *, values_only: bool = False) -> list[str]:
    """The parser's ``--`` options, sorted: those offered (not the deprecated spellings,
    hidden from --help), or all that take a value (whose next word is never completed)."""
    return sorted(
        option
        for action in parser._actions
        if (action.nargs != 0 if values_only else action.help is not argparse.SUPPRESS)
        for option in action.option_strings
        if option.startswith("--")
    )


def commands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, list[str]]]:
    """{command: (help, [option strings])} from the parser's subcommands."""
    return {
        name: (help_text, _long_options(sub))
        for name, (help_text, sub) in _subcommands(parser).items()
    }


def first_positional(sub: argparse.ArgumentParser) -> tuple[str, str] | None:
    """How the command's first positional completes: ``("choices", "a b")`` for its choices,
    ``("names", "grants,profiles")`` for what ``jit __complete`` remembers; else None."""
    for action in sub._actions:
        if action.option_strings:
            continue
        if action.choices:
            return "choices", " ".join(str(choice) for choice in action.choices)
        metavar = str(action.metavar or action.dest).upper()
        kinds = [kind for mark, kind in _DYNAMIC if mark in metavar]
        return ("names", ",".join(kinds)) if kinds else None
    return None


def _global_options(parser: argparse.ArgumentParser) -> list[str]:
    return _long_options(parser)


def _bash_case(name: str, sub: argparse.ArgumentParser) -> str:
    assignments = [
        f"opts={shlex.quote(' '.join(_long_options(sub)))}",
        f"values={shlex.quote(' '.join(_long_options(sub, values_only=True)))}",
    ]
    positional = first_positional(sub)
    if positional is not None:
        kind, text = positional
        assignments.append(f"{kind}={shlex.quote(text)}")
    return f"                {name}) {' '.join(assignments)} ;;"


def bash(parser: argparse.ArgumentParser) -> str:
    table = _subcommands(parser)
    cases = "\n".join(_bash_case(name, sub) for name, (_, sub) in table.items())
    global_values = " ".join(_long_options(parser, values_only=True))
    return f"""# jit bash completion: eval "$(jit completion bash)"
_jit() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" command="" opts="" choices="" names="" word i
    local values={shlex.quote(global_values)} given=0 skip=0
    local -a typed=()
    # bash splits --flag=value and URLs at = and : (COMP_WORDBREAKS): glue them back
    if ((COMP_CWORD > 1)) && [[ "$cur" == [=:] || "${{COMP_WORDS[COMP_CWORD - 1]}}" == [=:] ]]; then
        COMPREPLY=()
        return
    fi
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((i > 1)) && [[ "$word" == [=:] || "${{COMP_WORDS[i - 1]}}" == [=:] ]]; then
            typed[${{#typed[@]}} - 1]="${{typed[${{#typed[@]}} - 1]}}$word"
        else
            typed+=("$word")
        fi
    done
    for word in "${{typed[@]}}"; do
        if ((skip)); then
            skip=0
        elif [[ "$word" == -* ]]; then
            [[ " $values " == *" $word "* ]] && skip=1
        elif [[ -n "$command" ]]; then
            given=1
        else
            command="$word"
            case "$command" in
{cases}
            esac
        fi
    done
    if ((skip)); then  # the value of an option: nothing to offer
        COMPREPLY=()
        return
    fi
    if [[ -z "$command" ]]; then
        if [[ "$cur" == -* ]]; then
            opts={shlex.quote(" ".join(_global_options(parser)))}
        else
            opts={shlex.quote(" ".join(table))}
        fi
    elif [[ "$cur" != -* ]] && ((!given)); then
        if [[ -n "$names" ]]; then  # from the cache, before the rest of jit is imported
            local IFS=$'\\n'
            COMPREPLY=($(jit {COMPLETE} "$names" "$cur" "${{typed[@]}}" 2>/dev/null))
            return
        fi
        [[ -n "$choices" ]] && opts="$choices"
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


def _fish_positional_function(parser: argparse.ArgumentParser) -> list[str]:
    """``__jit_first_positional CMD...``: the cursor is at the first positional of a CMD."""
    values = sorted(
        {
            option
            for _, sub in _subcommands(parser).values()
            for option in _long_options(sub, values_only=True)
        }
        | set(_long_options(parser, values_only=True))
    )
    return [
        "function __jit_first_positional",
        "    set -l command ''",
        "    set -l skip 0",
        "    for word in (commandline -opc)[2..-1]",
        "        if test $skip = 1",
        "            set skip 0",
        f"        else if contains -- $word {' '.join(values)}",
        "            set skip 1",
        "        else if string match -q -- '-*' $word",
        "            continue",
        '        else if test -z "$command"',
        "            set command $word",
        "        else",
        "            return 1",
        "        end",
        "    end",
        '    test $skip = 0; and contains -- "$command" $argv',
        "end",
    ]


def fish(parser: argparse.ArgumentParser) -> str:
    table = _subcommands(parser)
    lines = ["# jit fish completion: jit completion fish | source", "complete -c jit -f"]
    names = " ".join(table)
    for name, (help_text, sub) in table.items():
        lines.append(
            f"complete -c jit -n 'not __fish_seen_subcommand_from {names}' "
            f"-a {name} -d {_fish_text(help_text)}"
        )
        for option in _long_options(sub):
            lines.append(f"complete -c jit -n '__fish_seen_subcommand_from {name}' -l {option[2:]}")
    by_positional: dict[tuple[str, str], list[str]] = {}
    for name, (_, sub) in table.items():
        positional = first_positional(sub)
        if positional is not None:
            by_positional.setdefault(positional, []).append(name)
    if by_positional:
        lines += _fish_positional_function(parser)
    for (kind, text), names_of in by_positional.items():
        if kind == "choices":
            candidates = _fish_text(text)
        else:  # from the cache, before the rest of jit is imported
            candidates = (
                f"'(jit {COMPLETE} {text} (commandline -ct) (commandline -opc)[2..-1] 2>/dev/null)'"
            )
        lines.append(
            f"complete -c jit -n '__jit_first_positional {' '.join(names_of)}' -a {candidates}"
        )
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](parser)
