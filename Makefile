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

# Where `make install` puts things: $(DESTDIR)$(PREFIX)/$(LIBDIR) and
# .../$(INCLUDEDIR). LIBDIR and INCLUDEDIR are relative to PREFIX, as
# CMake's CMAKE_INSTALL_LIBDIR is (lib64 or lib/<multiarch> on some systems).
PREFIX     ?= /usr/local
LIBDIR     ?= lib
INCLUDEDIR ?= include
DESTDIR    ?=

export ASYNCRT_LIBRARY := $(LIB)

.PHONY: all lib cmake-build demo test vet gotest check-header check-symbols ctest pytest dataplane-test bench clean \
	install install-test fuzz fuzz-short fuzz-cov soak soak-short

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

# The API fuzzer (tests/fuzz/README.md): libFuzzer over capi/ and the data
# plane against a reference model, without Go. fuzz-short replays every kept
# input under ASan and UBSan and fuzzes FUZZ_SECONDS (30) more; fuzz runs for
# LONG_SECONDS (3600) at nice 19; fuzz-cov reports the C code's coverage.
fuzz-short:
	$(MAKE) -C tests/fuzz short

fuzz:
	$(MAKE) -C tests/fuzz long

fuzz-cov:
	$(MAKE) -C tests/fuzz cov

# The soak (tests/soak/soak.c): mixed load on a thread-per-core and a local
# executor for SOAK_SECONDS (600), reporting throughput, errors and RSS; it
# fails on any error or when RSS over the last tenth of the run is more than
# SOAK_RSS_TOLERANCE percent (5) above the second tenth. make test runs 30 s,
# with 20 %: RSS still settles in the first 40 s or so (allocator arenas and
# task memory growing to the load's peak), and a leak of even a few bytes a
# task passes 20 % within seconds at this rate.
SOAK_SECONDS ?= 600
SOAK_RSS_TOLERANCE ?= 5
soak: cmake-build
	$(CMAKE_DIR)/tests/soak/soak $(SOAK_SECONDS) $(SOAK_RSS_TOLERANCE)

soak-short: cmake-build
	$(CMAKE_DIR)/tests/soak/soak 30 20

# The installed layout (the CMake route, CMakeLists.txt's install rules, puts
# the same files in place):
#   LIBDIR/libasyncrt.so.VERSION, .so.MAJOR -> it, .so -> .so.MAJOR
#   INCLUDEDIR/asyncrt.h, asyncrt_coro.h
#   LIBDIR/pkgconfig/asyncrt.pc
#   LIBDIR/cmake/asyncrt/asyncrtConfig.cmake, asyncrtConfigVersion.cmake
# The CMake files find the rest from their own place, so only the .pc file
# names PREFIX.
INSTALL_LIB := $(DESTDIR)$(PREFIX)/$(LIBDIR)
INSTALL_INC := $(DESTDIR)$(PREFIX)/$(INCLUDEDIR)
# From LIBDIR/cmake/asyncrt back up to PREFIX: one .. a directory.
CONFIG_TO_PREFIX := $(subst $() ,/,$(patsubst %,..,$(subst /, ,$(LIBDIR)/cmake/asyncrt)))
SUBST := sed -e 's|@ASYNCRT_VERSION@|$(VERSION)|g' -e 's|@ASYNCRT_VERSION_MAJOR@|$(MAJOR)|g' \
	-e 's|@ASYNCRT_SONAME@|$(SONAME)|g' -e 's|@ASYNCRT_PREFIX@|$(PREFIX)|g' \
	-e 's|@ASYNCRT_LIBDIR@|$(LIBDIR)|g' -e 's|@ASYNCRT_INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@ASYNCRT_CONFIG_TO_PREFIX@|$(CONFIG_TO_PREFIX)|g'

install: $(LIB)
	$(if $(filter /%,$(LIBDIR) $(INCLUDEDIR)),$(error LIBDIR and INCLUDEDIR are relative to PREFIX))
	install -d $(INSTALL_LIB)/pkgconfig $(INSTALL_LIB)/cmake/asyncrt $(INSTALL_INC)
	install -m 0755 $(LIB) $(INSTALL_LIB)/libasyncrt.so.$(VERSION)
	ln -sfn libasyncrt.so.$(VERSION) $(INSTALL_LIB)/$(SONAME)
	ln -sfn $(SONAME) $(INSTALL_LIB)/libasyncrt.so
	install -m 0644 include/asyncrt.h bindings/c/asyncrt_coro.h $(INSTALL_INC)
	$(SUBST) bindings/c/asyncrt.pc.in >$(INSTALL_LIB)/pkgconfig/asyncrt.pc
	$(SUBST) bindings/c/cmake/asyncrtConfig.cmake.in >$(INSTALL_LIB)/cmake/asyncrt/asyncrtConfig.cmake
	$(SUBST) bindings/c/cmake/asyncrtConfigVersion.cmake.in \
		>$(INSTALL_LIB)/cmake/asyncrt/asyncrtConfigVersion.cmake
	chmod 0644 $(INSTALL_LIB)/pkgconfig/asyncrt.pc $(INSTALL_LIB)/cmake/asyncrt/*.cmake

# Installs with make and with CMake into temporary trees, then builds and runs
# a C program against them with pkg-config and with find_package.
install-test: $(LIB)
	tests/install/run.sh

test: vet gotest lib check-header check-symbols dataplane-test fuzz-short ctest soak-short install-test pytest
	@echo "make test: all checks passed"

bench: $(LIB)
	$(PYTHON) bench/run.py $(BENCH)

clean:
	rm -rf $(BUILD)
