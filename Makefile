# asyncrt: `make demo` runs the examples, `make test` runs every check.
# Go builds libasyncrt.so; CMake builds the C examples and tests against it.

GO        ?= go
PYTHON    ?= python3
BUILD     := $(CURDIR)/build
LIB       := $(BUILD)/libasyncrt.so
CMAKE_DIR := $(BUILD)/cmake
GO_SRC    := $(shell find runtime capi -name '*.go' -o -name '*.c' -o -name '*.h' -o -name '*.map') include/asyncrt.h go.mod go.sum

# The version comes from the header, the one place it is written.
version_part = $(shell sed -n 's/^[#]define ASYNCRT_VERSION_$(1) *\([0-9]*\)$$/\1/p' include/asyncrt.h)
MAJOR     := $(call version_part,MAJOR)
VERSION   := $(MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
# Programs record the SONAME, so a new major (an incompatible ABI) can be
# installed next to the old one; see capi/asyncrt.map for the policy.
SONAME    := libasyncrt.so.$(MAJOR)

export ASYNCRT_LIBRARY := $(LIB)

.PHONY: all lib cmake-build demo test vet gotest check-header check-symbols ctest pytest dataplane-test bench clean

all: lib

lib: $(LIB)

# The version script exports exactly the header's functions (cgo's own
# exports and the Go runtime's symbols stay local). The SONAME link lets
# programs linked against build/libasyncrt.so find it by that name.
$(LIB): $(GO_SRC)
	@mkdir -p $(BUILD)
	$(GO) build -buildmode=c-shared -trimpath \
		-ldflags='-extldflags "-Wl,--version-script=$(CURDIR)/capi/asyncrt.map -Wl,-soname,$(SONAME)"' \
		-o $(LIB) ./capi
	@rm -f $(BUILD)/libasyncrt.h
	ln -sfn libasyncrt.so $(BUILD)/$(SONAME)

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

# The header, capi/asyncrt.map and the library's exports must agree; the
# second script shows that the first fails when one of them changes alone.
check-symbols: $(LIB)
	scripts/check_symbols.sh --strict $(LIB)
	scripts/check_symbols_test.sh

ctest: cmake-build
	cd $(CMAKE_DIR) && ctest --output-on-failure -j2

pytest: $(LIB)
	$(PYTHON) -m unittest discover -s bindings/python/tests -t bindings/python -v

dataplane-test:
	$(MAKE) -C runtime/dataplane/test

test: vet gotest lib check-header check-symbols dataplane-test ctest pytest
	@echo "make test: all checks passed"

bench: $(LIB)
	$(PYTHON) bench/run.py $(BENCH)

clean:
	rm -rf $(BUILD)
