# cloud-network — build, test, demo, bench, install.
# Every target installs what it needs first: node_modules is (re)installed with `npm ci`
# whenever package-lock.json is newer than it.

SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
PROVIDER ?= azure
NODE ?= node

.PHONY: all build test typecheck demo bench install uninstall clean

all: build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

dist/.built: node_modules/.installed tsconfig.json tsconfig.build.json $(shell find protocol helper agent cnctl netlink -name '*.ts' 2>/dev/null)
	npx tsc -p tsconfig.build.json
	touch $@

build: dist/.built

typecheck: node_modules/.installed
	npx tsc -p tsconfig.json

test: typecheck build
	npx ava

demo: build
	$(NODE) dist/test/demo.js --provider $(PROVIDER)

bench: build
	@echo "the benchmarks are not written yet (issue 6)"; exit 1

install: build
	@echo "make install is not written yet (issue 5)"; exit 1

uninstall:
	@echo "make uninstall is not written yet (issue 5)"; exit 1

clean:
	rm -rf dist node_modules
