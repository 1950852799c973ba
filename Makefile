# lctrain front door. CMake is the real build (CMakeLists.txt); this file calls it.
#   make          deps + configure + build; executables in bin/, a link ./lctrain
#   make test     build + CTest (all tests, as CI runs them); names every skipped test; with
#                 CI=true a skip not listed in tests/ci_allowed_skips.txt fails
#   make run      the main job: demo data, train and evaluate a tiny model on CPU with MPI ranks
#   make bench    benchmarks (docs/PERFORMANCE.md)
#   make deps     install missing Debian packages (root) or print the command (non-root), and the
#                 project's Python in .venv (tools/requirements.txt: transformers, matplotlib)
#   make docs     regenerate docs/deck.md from the deck schema
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
NP ?= 4
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: all deps configure build test run bench docs clean gpu-pack

all: build

deps:
	@bash tools/deps.sh build python

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)
	@ln -sfn $(BUILD)/bin bin
	@ln -sfn bin/lctrain lctrain

test: build
	@bash tools/run_ctest.sh $(BUILD) -j $(JOBS) $(CTEST_FLAGS)

run: build
	@bash tools/run_demo.sh $(NP)

bench: build
	@bash tools/run_bench.sh

# The GPU check's pack (tests/gpu/pack.sh): programs, libraries, OpenMPI, data; carried to a GPU
# machine as .gpu-pack.tar.xz (docs/cuda.md, "The GPU check").
gpu-pack: build
	bash tests/gpu/pack.sh $(BUILD) $(BUILD)/gpu-pack
	tar -C $(BUILD) -cJf .gpu-pack.tar.xz gpu-pack
	@ls -la .gpu-pack.tar.xz

docs: build
	./bin/lctrain --help-markdown > docs/deck.md

clean:
	rm -rf $(BUILD) bin lctrain
