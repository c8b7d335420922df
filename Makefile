# cloud-network — build, test, demo, bench, install.
# Every target installs what it needs first: node_modules is (re)installed with `npm ci`
# whenever package-lock.json is newer than it.

SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
PROVIDER ?= azure
NODE ?= node

.PHONY: all build test test-unit typecheck demo playground demo-clean bench reliability install uninstall deb system-test clean

all: build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# each program as one bundle (tools/build.mjs); types are checked by `make typecheck`
dist/.built: node_modules/.installed tools/build.mjs tools/params-checks.mjs $(shell find protocol helper agent cnctl netlink -name '*.ts' 2>/dev/null)
	node tools/build.mjs
	touch $@

build: dist/.built

typecheck: node_modules/.installed
	npx tsc -p tsconfig.json

# Every test: test/unit, test/kernel (network namespaces), test/e2e and test/system (the
# installed units, polkit), and bench/smoke.test.ts; as root, a few minutes.
test: typecheck build
	tools/install-debian-packages
	npx ava

# The fast loop: test/unit only, without root, a build or namespaces.
test-unit: node_modules/.installed
	npx ava test/unit

# KEEP=1 (or make playground) leaves the simulated cloud running; make demo-clean removes it.
demo: build
	tools/install-debian-packages
	$(NODE) --import=tsx test/demo.ts --provider $(PROVIDER) $(if $(KEEP),--keep)

playground:
	$(MAKE) demo KEEP=1

demo-clean:
	$(NODE) --import=tsx test/demo.ts --clean

# Faults survived, bad input refused, nothing lost: every case in throwaway namespaces, a
# scoreboard at the end, non-zero on any failure (test/reliability/, about 7 minutes, as root).
# The policy fuzzer prints its seed; CLOUD_NETWORK_FUZZ_SEED=N make reliability repeats a run.
reliability: build
	tools/install-debian-packages
	$(NODE) --import=tsx test/reliability/main.ts

# SIZES=S (or S,M) picks scenario sizes; the figures go to bench/results.json (bench/README.md)
SIZES ?= S,M,L
bench: build
	tools/install-debian-packages
	$(NODE) --import=tsx bench/run.ts '$(SIZES)'

# Install layout (README.md, "Install on a cloud VM"): units, sysusers.d and tmpfiles.d under
# $(PREFIX)/lib, which systemd searches for /usr and /usr/local alike; the polkit rule in
# /usr/share (polkit reads no other prefix); the configuration in /etc. systemd/install.sh keeps
# a manifest of every installed path in $(LIBDIR)/install-manifest.txt, and uninstall removes
# exactly those.
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
LIBDIR ?= $(PREFIX)/lib/cloud-network
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
POLKITRULESDIR ?= /usr/share/polkit-1/rules.d
SYSCONFDIR ?= /etc
MANDIR ?= $(PREFIX)/share/man
BASHCOMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
# systemd-networkd reads drop-ins from /usr/lib and /usr/local/lib alike (networkd.conf(5))
NETWORKDCONFDIR ?= $(PREFIX)/lib/systemd/networkd.conf.d
INSTALL_VARS = DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' LIBEXECDIR='$(LIBEXECDIR)' \
	LIBDIR='$(LIBDIR)' UNITDIR='$(UNITDIR)' SYSUSERSDIR='$(SYSUSERSDIR)' TMPFILESDIR='$(TMPFILESDIR)' \
	POLKITRULESDIR='$(POLKITRULESDIR)' SYSCONFDIR='$(SYSCONFDIR)' MANDIR='$(MANDIR)' \
	BASHCOMPLETIONDIR='$(BASHCOMPLETIONDIR)' NETWORKDCONFDIR='$(NETWORKDCONFDIR)' NODE='$(NODE)'

install: build
	$(INSTALL_VARS) bash systemd/install.sh install

uninstall:
	$(INSTALL_VARS) bash systemd/install.sh uninstall

# The Debian package (debian/): debhelper runs make build and make install (PREFIX=/usr) into
# debian/cloud-network and packs cloud-network_<version>_<arch>.deb here; lintian must find no
# error and no warning that debian/cloud-network.lintian-overrides does not explain.
DEB = cloud-network_$(shell $(NODE) -p 'require("./package.json").version')_$(shell dpkg --print-architecture).deb
deb: build
	tools/install-debian-packages
	debian/rules clean
	DEB_OUT=$(CURDIR) debian/rules binary
	lintian --fail-on error,warning --info --pedantic --tag-display-limit 0 $(DEB)
	@echo "$(DEB): Installed-Size $$(dpkg-deb -f $(DEB) Installed-Size) KiB"

# The package under systemd as PID 1 (test/system/): a machine booted in namespaces over an
# overlay of this host's root, against the IMDS simulator; one line per check, non-zero on any
# failure, nothing left behind (as root, about 3 minutes).
system-test: deb
	$(NODE) --import=tsx test/system/main.ts $(DEB)

clean:
	rm -rf dist node_modules
