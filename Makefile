# Two commands on a fresh machine: `make demo` and `make test`. Everything else they need
# is installed here from pinned versions (uv.lock for the app, tools/sam/requirements.txt for SAM).
SHELL := /bin/bash
.DEFAULT_GOAL := help

BOOT_PYTHON ?= $(firstword $(shell command -v python3 2>/dev/null))
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Bytecode compiled at install, as pip compiles a Lambda layer: imports (and the cold-start
# benchmark) then do not depend on whether this machine lets Python write .pyc files.
export UV_COMPILE_BYTECODE := 1

.PHONY: help env demo test lint bench clean validate build audit-deps test-future e2e

help:
	@echo "make demo   - run the broker end to end on the embedded local stack"
	@echo "make test   - install what the tests need and run the whole suite"
	@echo "make lint   - ruff (lint, format check), mypy, bandit and import-linter (the layering)"
	@echo "make test-future - the suite with the clock 400 days ahead in every Python process"
	@echo "make audit-deps - pip-audit of every locked package (needs PyPI's JSON API)"
	@echo "make validate - sam validate --lint, cfn-lint and checkov on template.yaml and templates/member-account.yaml (own venvs, no AWS account)"
	@echo "make bench  - benchmarks (ratios against a baseline measured in the same run)"
	@echo "make build  - sam build for deployment (then: .tools/sam/bin/sam deploy --guided; docs/deploy.md)"
	@echo "make e2e    - the demo's scenario against a deployed stack (JIT_E2E_API_URL, AWS_PROFILE; docs/deploy.md)"

$(UV):
	@test -n "$(BOOT_PYTHON)" || { echo "python3 is needed to bootstrap uv" >&2; exit 1; }
	$(BOOT_PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.8

$(VENV)/.synced: pyproject.toml src/cli/pyproject.toml src/local/pyproject.toml layers/common/pyproject.toml uv.lock | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 (the Lambda runtime) is needed: install it with pyenv" >&2; exit 1; }
	$(UV) sync --frozen --python "$(PYTHON312)"
	@touch $@

env: $(VENV)/.synced

# The SAM CLI lives in its own venv: it pins its own boto3/pydantic, apart from the app's.
# Reinstalled from scratch only when its pinned requirements change (the stamp file).
SAM_VENV := $(TOOLS)/sam
SAM := $(SAM_VENV)/bin/sam
# SAM's own settings dir, inside the venv: telemetry off, and a last update check in the far
# future so it never asks PyPI for a newer version.
SAM_HOME := $(SAM_VENV)/home
# `sam validate --lint` (cfn-lint) needs a region and no AWS account or credentials. Nothing
# here may reach the network: AWS config files are ignored and every HTTP(S) client is sent
# to a closed local port.
SAM_RUN := env -u AWS_PROFILE SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR=$(abspath $(SAM_HOME)) \
	AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
	HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
	http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy=

$(SAM_VENV)/.installed: tools/sam/requirements.txt | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 (the Lambda runtime) is needed: install it with pyenv" >&2; exit 1; }
	rm -rf $(SAM_VENV)
	$(UV) venv --quiet --python "$(PYTHON312)" $(SAM_VENV)
	$(UV) pip install --quiet --python $(SAM_VENV)/bin/python -r tools/sam/requirements.txt
	mkdir -p $(SAM_HOME)
	echo '{"telemetryEnabled": false, "lastVersionCheck": 32503680000.0}' > $(SAM_HOME)/metadata.json
	@touch $@

# aws-sam-translator alone, from hashed pins: the local stack translates template.yaml with it
# (jit_local.template). The demo needs only this, never the SAM CLI and its linters.
TRANSLATOR_VENV := $(TOOLS)/translator

$(TRANSLATOR_VENV)/.installed: tools/translator/requirements.txt | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 (the Lambda runtime) is needed: install it with pyenv" >&2; exit 1; }
	rm -rf $(TRANSLATOR_VENV)
	$(UV) venv --quiet --python "$(PYTHON312)" $(TRANSLATOR_VENV)
	$(UV) pip install --quiet --require-hashes --python $(TRANSLATOR_VENV)/bin/python -r tools/translator/requirements.txt
	@touch $@

# The demo's own venv: the local stack, the CLI and the AWS CLI (the `demo` group), no test
# or lint tools.
DEMO_VENV := .venv-demo

$(DEMO_VENV)/.synced: pyproject.toml src/cli/pyproject.toml src/local/pyproject.toml layers/common/pyproject.toml uv.lock | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 (the Lambda runtime) is needed: install it with pyenv" >&2; exit 1; }
	UV_PROJECT_ENVIRONMENT=$(DEMO_VENV) $(UV) sync --frozen --quiet --no-default-groups --group demo --python "$(PYTHON312)"
	@touch $@

# checkov in a venv of its own as well (it pins its own dependencies), from hashed pins.
CHECKOV_VENV := $(TOOLS)/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# No network for checkov either: no PyPI version check, no guideline mapping and no policy
# download from its platform (there is no API key: --skip-download makes that explicit).
CHECKOV_RUN := $(SAM_RUN) CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE

$(CHECKOV_VENV)/.installed: tools/checkov/requirements.txt | $(UV)
	@test -n "$(PYTHON312)" || { echo "Python 3.12 (the Lambda runtime) is needed: install it with pyenv" >&2; exit 1; }
	rm -rf $(CHECKOV_VENV)
	$(UV) venv --quiet --python "$(PYTHON312)" $(CHECKOV_VENV)
	$(UV) pip install --quiet --require-hashes --python $(CHECKOV_VENV)/bin/python -r tools/checkov/requirements.txt
	@touch $@

# The templates (the hub's, and the member accounts' of issue 9) as SAM, CloudFormation's
# linter and checkov see them. A finding is fixed, or skipped in place in the template with its
# reason (Metadata: cfn-lint / checkov skip).
TEMPLATES := template.yaml templates/member-account.yaml
validate: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(SAM_RUN) $(SAM) validate --lint --template-file template.yaml
	$(SAM_RUN) $(SAM) validate --lint --template-file templates/member-account.yaml
	$(SAM_RUN) $(SAM_VENV)/bin/cfn-lint --regions us-east-1 us-west-2 eu-west-1 eu-central-1 ap-southeast-2 -- $(TEMPLATES)
	$(CHECKOV_RUN) $(CHECKOV) -f $(TEMPLATES) --framework cloudformation --quiet --compact --skip-download

test: env validate lint $(TRANSLATOR_VENV)/.installed
	$(VENV)/bin/pytest -q

# For deployment (needs Python 3.12 on PATH, no Docker): the layer gets exactly its pinned
# requirements. PIP_NO_DEPS keeps pip from adding botocore & co., which the runtime ships.
build: $(SAM_VENV)/.installed
	PATH="$(dir $(PYTHON312)):$$PATH" PIP_NO_DEPS=1 SAM_CLI_TELEMETRY=0 \
		__SAM_CLI_APP_DIR=$(abspath $(SAM_HOME)) $(SAM) build

# The demo's scenario against a deployed stack, with the caller's real AWS credentials
# (docs/deploy.md): JIT_E2E_API_URL (the stack's ApiUrl output) and AWS_PROFILE (or keys) of
# a caller the access policy entitles to JIT_E2E_PROFILE (default s3-read), whose bucket is
# JIT_E2E_BUCKET (default example-bucket). Without JIT_E2E_API_URL every test is skipped and
# says why.
e2e: env
	$(VENV)/bin/pytest -m e2e tests/e2e

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -r layers functions src  # each finding fixed or `# nosec` with its reason
	$(VENV)/bin/lint-imports  # the import contracts in pyproject.toml's [tool.importlinter]

# Known vulnerabilities in every locked package. Needs PyPI's JSON API (this project's build
# machines reach only a package mirror without it, so it is not part of `make test`);
# --strict fails whenever a package could not be audited, so it never passes without a check.
audit-deps: env
	$(UV) export --frozen --no-hashes --all-groups --all-packages --no-emit-workspace --quiet > .tools/requirements-audit.txt
	$(VENV)/bin/pip-audit --strict --disable-pip --no-deps --progress-spinner off -r .tools/requirements-audit.txt

# The suite with the clock 400 days ahead in every Python process it starts (tools/clock_shift):
# no test may depend on the day it runs.
test-future: env $(TRANSLATOR_VENV)/.installed
	JIT_TEST_CLOCK_SHIFT_DAYS=400 PYTHONPATH=$(abspath tools/clock_shift) $(VENV)/bin/pytest -q -p no:cacheprovider

demo: $(DEMO_VENV)/.synced $(TRANSLATOR_VENV)/.installed
	$(DEMO_VENV)/bin/python -m jit_local.demo

bench: env $(TRANSLATOR_VENV)/.installed
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/modes.py
	$(VENV)/bin/python bench/cli.py
	$(VENV)/bin/python bench/install.py  # CLI-only install size (uv tool install) against botocore alone
	$(VENV)/bin/python bench/cleanup.py  # hub + 2 members x 2,000 roles: about 6 minutes on moto; --roles 500 for a quick run
	$(VENV)/bin/python bench/load.py  # 200 concurrent grants: in-process vs 4 worker processes

clean:
	rm -rf $(TOOLS) $(VENV) $(DEMO_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
