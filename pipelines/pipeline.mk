# pipeline.mk - `make pipeline TASK=avss|s4|ms3 [DATA=DIR] [RUN=DIR] [DEVICE=cpu|cuda]`
#
# Each step is a program that writes a folder under $(RUN) with a manifest.json;
# the manifests are the Make targets, so a rerun does only what is out of date
# and `make <step> TASK=...` reruns one step. Without DATA= the generated demo
# data set and random-weight demo models are used. Steps whose program is not
# built yet are announced and skipped (the pipeline grows with the issues).
TASK ?= avss
RUN ?= runs/$(TASK)
DEVICE ?= cpu
DEMO_VIDEOS ?= 40
DEMO_SEED ?= 1
TASK_CONFIG := pipelines/$(TASK).json
BIN := $(BUILD)/bin

ifeq ($(filter $(TASK),avss s4 ms3),)
$(error TASK must be avss, s4 or ms3, not '$(TASK)')
endif

# The task's subsets and model configs, read from its JSON with the jq-free sed
# below (the files are one key per line).
task_field = $(shell sed -n 's/^ *"$(1)": *"\(.*\)",\{0,1\}$$/\1/p' $(TASK_CONFIG))
SUBSETS := $(call task_field,subsets)
STAGE1_MODEL := $(call task_field,stage1_model)

ifeq ($(DATA),)
DATA_DIR := $(RUN)/demo-data
DATA_STAMP := $(DATA_DIR)/metadata.csv
else
DATA_DIR := $(DATA)
DATA_STAMP := $(DATA)/metadata.csv
endif
MODELS := $(RUN)/models
CACHE := $(RUN)/cache

.PHONY: pipeline data models extract stage1 stage2 evaluate

pipeline: deps
	@$(MAKE) --no-print-directory programs BUILD=$(BUILD) CUDA=$(CUDA)
	@$(MAKE) --no-print-directory -f Makefile pipeline-steps TASK=$(TASK) RUN=$(RUN) DATA=$(DATA) BUILD=$(BUILD) CUDA=$(CUDA)

pipeline-steps: data models extract stage1 stage2 evaluate
	@echo "pipeline $(TASK): done; outputs under $(RUN)/"

data: $(DATA_STAMP)
$(RUN)/demo-data/metadata.csv:
	@echo "== data: generating the demo data set ($(DEMO_VIDEOS) videos) into $(RUN)/demo-data"
	$(BIN)/stepstone-synth --out $(RUN)/demo-data --seed $(DEMO_SEED) --videos $(DEMO_VIDEOS) --no-video

# Random-weight demo models (no real weights can be downloaded here). With real
# weights, put config.json, backbone.safetensors and vggish.safetensors in
# $(RUN)/models yourself: Make will not overwrite them.
models: $(MODELS)/backbone.safetensors $(MODELS)/vggish.safetensors
$(MODELS)/backbone.safetensors $(MODELS)/vggish.safetensors &:
	@echo "== models: random-weight demo models into $(MODELS)"
	@mkdir -p $(MODELS)
	cp $(STAGE1_MODEL) $(MODELS)/config.json
	$(BIN)/stepstone-model init --config $(MODELS)/config.json --backbone-out $(MODELS)/backbone.safetensors \
	  --vggish-out $(MODELS)/vggish.safetensors --seed $(DEMO_SEED)

# A manifest whose status is not "complete" (failed videos, an interrupt) is
# removed first, so the step runs again and finishes what is missing.
incomplete := $(shell for m in $(CACHE)/manifest.json; do [ -f $$m ] && ! grep -q '"status": *"complete"' $$m && echo $$m; done)
ifneq ($(incomplete),)
$(shell rm -f $(incomplete))
endif

extract: $(CACHE)/manifest.json
$(CACHE)/manifest.json: $(DATA_STAMP) $(MODELS)/backbone.safetensors $(MODELS)/vggish.safetensors
	@if [ -x $(BIN)/stepstone-extract ]; then \
	  echo "== extract: features of $(DATA_DIR) into $(CACHE)"; \
	  $(BIN)/stepstone-extract --data $(DATA_DIR) --cache $(CACHE) --config $(MODELS)/config.json \
	    --weights $(MODELS)/backbone.safetensors --audio-weights $(MODELS)/vggish.safetensors \
	    --subsets $(SUBSETS) --device $(DEVICE); \
	else echo "== extract: stepstone-extract is not built yet (issue #5); skipped"; fi

stage1: extract
	@if [ -x $(BIN)/stepstone-stage1 ]; then $(MAKE) --no-print-directory -f Makefile $(RUN)/stage1/manifest.json; \
	else echo "== stage1: stepstone-stage1 is not built yet (issue #6 and the stage issues); skipped"; fi

stage2: stage1
	@if [ "$(TASK)" != avss ]; then echo "== stage2: not part of $(TASK)"; \
	elif [ -x $(BIN)/stepstone-stage2 ]; then $(MAKE) --no-print-directory -f Makefile $(RUN)/stage2/manifest.json; \
	else echo "== stage2: stepstone-stage2 is not built yet; skipped"; fi

evaluate: stage2
	@pred=$(RUN)/stage2/preds; [ "$(TASK)" = avss ] || pred=$(RUN)/stage1/masks; \
	if [ -d $$pred ]; then \
	  echo "== evaluate: $$pred against $(DATA_DIR)"; \
	  $(BIN)/stepstone-evaluate --task $(TASK) --data $(DATA_DIR) --pred $$pred --split test \
	    --out $(RUN)/metrics.json --report $(RUN)/report; \
	else echo "== evaluate: no predictions yet ($$pred); skipped"; fi
