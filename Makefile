# Shortcuts for the commands in README.md.

.PHONY: install app demo test

install:
	python3 -m venv .venv
	.venv/bin/pip install -r requirements-dev.txt

app:
	.venv/bin/streamlit run app

# rebuild the embedded demo run: corpus, training and extraction (about 15 min on 2 CPU cores)
demo:
	.venv/bin/python -m signattention_core.demo

test:
	.venv/bin/python -m pytest
