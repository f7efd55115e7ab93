# OpenTransit — every set-up step is here and idempotent. The README's two commands: `make demo`, `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build
NODE_BIN := node_modules/.bin
BUILD := build
BPF_SRC := $(wildcard bpf/*.c)
BPF_OBJ := $(patsubst bpf/%.c,$(BUILD)/bpf/%.o,$(BPF_SRC))
BPF_HDR := $(wildcard bpf/*.h bpf/lib/*.h)

.PHONY: setup system-packages deps build ts bpf addon generate test test-unit test-privileged typecheck demo bench clean

setup: system-packages deps

system-packages:
	@scripts/setup-system.sh

# npm ci only when the lock file changed since the last install (npm ci always wipes node_modules).
# --ignore-scripts: every native dependency we use loads a prebuilt binary at run time (lmdb, msgpackr-extract,
# netlink), and our own addon is built below with --nodedir=/usr — an install script would only try to compile
# or download, which fails offline and leaves node_modules half-installed.
deps: node_modules/.ot-installed
node_modules/.ot-installed: package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

# `generate` is not part of the build on purpose: the generated TS is committed, and test/unit/bpf-abi.test.ts must
# see the committed file (a build that regenerated it would hide a stale commit from CI).
build: setup bpf addon ts

ts: deps
	$(NODE_BIN)/tsc -p tsconfig.json

# --- eBPF: objects built against the running kernel's BTF (never committed) ---
$(BUILD)/vmlinux.h:
	@mkdir -p $(BUILD)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/bpf/%.o: bpf/%.c $(BPF_HDR) $(BUILD)/vmlinux.h
	@mkdir -p $(BUILD)/bpf
	clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I$(BUILD) -Ibpf -c $< -o $@

bpf: $(BPF_OBJ)

# The TS twin of the C ABI header: run after editing bpf/opentransit_abi.h and commit the result
# (test/unit/bpf-abi.test.ts fails when the committed file is stale).
generate: deps
	$(NODE_BIN)/tsx src/kernel/bpf/abigen.ts bpf/opentransit_abi.h src/kernel/bpf/abi.generated.ts

# The libbpf N-API addon, rebuilt only when its sources change. `configure` + `build` rather than `rebuild`:
# rebuild starts with `clean`, which deletes all of build/ (vmlinux.h and the BPF objects live there too).
# --nodedir=/usr: node-gyp uses the installed headers (/usr/include/node) and never downloads any.
ADDON := $(BUILD)/Release/opentransit_bpf.node
ADDON_SRC := binding.gyp $(wildcard src/kernel/bpf/native/*.cc src/kernel/bpf/native/*.h)
addon: $(ADDON)
$(ADDON): $(ADDON_SRC) | deps
	$(NODE_BIN)/node-gyp configure --nodedir=/usr --loglevel=warn
	$(NODE_BIN)/node-gyp build --nodedir=/usr --loglevel=warn -j 2

typecheck: deps
	$(NODE_BIN)/tsc -p tsconfig.json --noEmit

# Unit tests need no root; privileged tests (netns, BPF, nft, BIRD, etcd) run for real and fail, never skip,
# when a kernel feature is missing.
test: build
	scripts/run-tests.sh all

test-unit: build
	scripts/run-tests.sh unit

test-privileged: build
	scripts/run-tests.sh privileged

demo: build
	bin/opentransit demo

bench: build
	bin/opentransit bench

clean:
	rm -rf dist $(BUILD)
