# asyncrt: `make demo` runs the examples, `make test` runs every check.
# Go builds libasyncrt.so; CMake builds the C examples and tests against it.

GO        ?= go
PYTHON    ?= python3
BUILD     := $(CURDIR)/build
LIB       := $(BUILD)/libasyncrt.so
CMAKE_DIR := $(BUILD)/cmake
GO_SRC    := $(shell find runtime capi -name '*.go' -o -name '*.c' -o -name '*.h' -o -name '*.map') include/asyncrt.h go.mod go.sum

export ASYNCRT_LIBRARY := $(LIB)

.PHONY: all lib cmake-build demo test vet gotest check-header check-symbols ctest pytest pyinstall-test dataplane-test bench clean

all: lib

lib: $(LIB)

# The version script keeps the exported set to asyncrt_* (cgo's own exports
# and the Go runtime's symbols stay local).
$(LIB): $(GO_SRC)
	@mkdir -p $(BUILD)
	$(GO) build -buildmode=c-shared -trimpath \
		-ldflags='-extldflags "-Wl,--version-script=$(CURDIR)/capi/asyncrt.map -Wl,-soname,libasyncrt.so"' \
		-o $(LIB) ./capi
	@rm -f $(BUILD)/libasyncrt.h

$(CMAKE_DIR)/Makefile: CMakeLists.txt $(LIB)
	cmake -S . -B $(CMAKE_DIR) -DCMAKE_BUILD_TYPE=Release -DASYNCRT_LIBRARY=$(LIB) >/dev/null

cmake-build: $(CMAKE_DIR)/Makefile
	cmake --build $(CMAKE_DIR) -j2

demo: cmake-build
	$(CMAKE_DIR)/examples/c/hello
	$(PYTHON) examples/python/hello.py

vet:
	$(GO) vet ./...

gotest:
	$(GO) test -race -count=1 ./...

check-header:
	scripts/check_header.sh

check-symbols: $(LIB)
	scripts/check_symbols.sh --strict $(LIB)

ctest: cmake-build
	cd $(CMAKE_DIR) && ctest --output-on-failure -j2

pytest: $(LIB)
	$(PYTHON) -m unittest discover -s bindings/python/tests -t bindings/python -v

# `pip install bindings/python` offline into a fresh venv (build/pyvenv), as
# DEVELOPERS.md says, then a task from outside the source tree.
pyinstall-test: $(LIB)
	scripts/pyinstall_test.sh $(PYTHON)

dataplane-test:
	$(MAKE) -C runtime/dataplane/test

test: vet gotest lib check-header check-symbols dataplane-test ctest pytest pyinstall-test
	@echo "make test: all checks passed"

bench: $(LIB)
	$(PYTHON) bench/run.py $(BENCH)

clean:
	rm -rf $(BUILD)
