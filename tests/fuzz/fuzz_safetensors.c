/* fuzz_safetensors.c - libFuzzer target for the safetensors header parser.
 * `make fuzz` builds it with clang -fsanitize=fuzzer,address,undefined and
 * runs it for FUZZ_SECONDS on tests/fuzz/corpus. Every input must either be
 * rejected with a message or parse into entries whose byte ranges lie inside
 * the input: the loop below touches every byte of every entry so ASan sees
 * any range the validation let through wrongly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, so reads past the end hit ASan's redzone, not the fuzzer's buffer */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    safetensors_t st;
    err_t err;
    if (safetensors_parse(copy, size, "fuzz-input", &st, &err) == ERR_OK) {
        volatile uint8_t sum = 0;
        for (int i = 0; i < st.n_entries; i++) {
            const uint8_t *p = st.entries[i].data;
            for (uint64_t b = 0; b < st.entries[i].end - st.entries[i].begin; b++) sum ^= p[b];
            if (safetensors_find(&st, st.entries[i].name) != &st.entries[i]) abort();
        }
        for (int i = 0; i < st.n_meta; i++) (void)safetensors_meta(&st, st.meta_keys[i]);
        safetensors_close(&st);
    } else if (err.msg[0] == '\0') {
        abort(); /* every rejection must say why */
    }
    free(copy);
    return 0;
}
