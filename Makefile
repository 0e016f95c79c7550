# stepstone - top-level build.
#   make              build every program into build/bin/ (and the tests)
#   make test         install missing system packages (as root), build, run the suite
#   make asan         the suite under AddressSanitizer + UBSan (same as make test SANITIZE=1)
#   make bench        benchmarks, side by side with PyTorch when it is installed
#   make fuzz         the safetensors header fuzzer for FUZZ_SECONDS (default 60)
#   make CUDA=0       CPU only; CUDA=1 (the default when nvcc is on PATH) adds the CUDA backend

CUDA ?= $(if $(shell command -v nvcc 2>/dev/null),1,0)
# OpenMP threads that spin while waiting take the cores from threads that
# have work when the machine is shared (measured: Swin-B 4-10x slower on a
# busy 2-core machine); libgomp reads this before main, so it is set here for
# the tests, benchmarks and the pipeline (and the README says so for direct runs).
export OMP_WAIT_POLICY ?= passive
SANITIZE ?= 0
BUILD ?= $(if $(filter 1,$(SANITIZE)),build-asan,build)
ifeq ($(origin CC),default)
CC := gcc
endif
NVCC ?= nvcc
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80

PKGS := jansson libpng libavformat libavcodec libavutil libswresample libswscale
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -O2 -g -fopenmp $(WARN) -Icommon -Icache -Itests/lib $(PKG_CFLAGS) -I/usr/include/x86_64-linux-gnu/openblas-openmp -I/usr/include/openblas
# OpenBLAS's OpenMP build: BLAS and our own OpenMP loops share one thread pool
# (the pthread build's threads and libgomp's spin-waiting threads fight over
# the cores and cost Swin-B 2-3x).
OPENBLAS_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
LDLIBS := $(PKG_LIBS) -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -llmdb -lturbojpeg -lm -lpthread -fopenmp
ifeq ($(SANITIZE),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDLIBS += -fsanitize=address,undefined
endif
CFLAGS := $(CFLAGS_BASE) $(EXTRA_CFLAGS)

COMMON_C := $(filter-out common/cuda_stub.c,$(wildcard common/*.c))
COMMON_CU := $(wildcard common/*.cu)
# cache/ is a library too (its main.c is stepstone-cache)
COMMON_C += $(filter-out cache/main.c,$(wildcard cache/*.c))
ifeq ($(CUDA),1)
COMMON_OBJ := $(COMMON_C:%.c=$(BUILD)/obj/%.o) $(COMMON_CU:%.cu=$(BUILD)/obj/%.cu.o)
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
else
COMMON_OBJ := $(COMMON_C:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/common/cuda_stub.o
endif
LIB := $(BUILD)/libstepstone.a

# Programs: every folder with a main.c is one program, stepstone-<folder name>
# (extract/main.c -> stepstone-extract, tools/synth/main.c -> stepstone-synth),
# built from every .c file of its folder (cache/ only from main.c).
PROGRAM_DIRS := $(patsubst %/main.c,%,$(wildcard */main.c tools/*/main.c))
PROGRAMS := $(foreach d,$(PROGRAM_DIRS),$(BUILD)/bin/stepstone-$(notdir $(d)))

TEST_LIB_C := $(wildcard tests/lib/*.c)
TEST_LIB := $(BUILD)/libtests.a
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
BENCHES := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(wildcard tests/bench/bench_*.c))

.PHONY: all test asan bench fuzz deps clean programs tests
all: programs tests

programs: $(PROGRAMS)
tests: $(TESTS)

deps:
	@tools/install-deps.sh

$(BUILD)/obj/%.o: %.c $(wildcard common/*.h cache/*.h tests/lib/*.h */*.h tools/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(CUDA_ARCH) -Icommon -Xcompiler -Wall,-Wextra,-Werror -c $< -o $@

$(LIB): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(TEST_LIB): $(TEST_LIB_C:%.c=$(BUILD)/obj/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^ $(if $^,,)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ -Wl,--whole-archive $(TEST_LIB) -Wl,--no-whole-archive $(LIB) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(TEST_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ -Wl,--whole-archive $(TEST_LIB) -Wl,--no-whole-archive $(LIB) $(LDLIBS)

define PROGRAM_RULE
$(BUILD)/bin/stepstone-$(notdir $(1)): $(patsubst %.c,$(BUILD)/obj/%.o,$(if $(filter cache,$(1)),$(1)/main.c,$(wildcard $(1)/*.c))) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(filter %.o,$$^) -o $$@ $(LIB) $$(LDLIBS)
endef
$(foreach d,$(PROGRAM_DIRS),$(eval $(call PROGRAM_RULE,$(d))))

test: deps
	@$(MAKE) --no-print-directory all BUILD=$(BUILD) SANITIZE=$(SANITIZE) CUDA=$(CUDA)
	@tests/run.sh $(BUILD)

asan:
	@$(MAKE) --no-print-directory test SANITIZE=1

bench: deps
	@$(MAKE) --no-print-directory all $(BENCHES) BUILD=$(BUILD) CUDA=$(CUDA)
	@tests/bench/run.sh $(BUILD)

FUZZ_SECONDS ?= 60
fuzz: deps
	@mkdir -p $(BUILD)/fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Icommon $(PKG_CFLAGS) \
	  -I/usr/include/x86_64-linux-gnu/openblas-openmp tests/fuzz/fuzz_safetensors.c \
	  $(filter common/%,$(COMMON_C)) common/cuda_stub.c -o $(BUILD)/fuzz/fuzz_safetensors \
	  $(PKG_LIBS) -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -llmdb -lturbojpeg -lm -lpthread
	@mkdir -p $(BUILD)/fuzz/corpus && cp -n tests/fuzz/corpus/* $(BUILD)/fuzz/corpus/ 2>/dev/null || true
	$(BUILD)/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/corpus

clean:
	rm -rf build build-asan

include pipelines/pipeline.mk
