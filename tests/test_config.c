/* test_config.c - JSON config access: the golden HuggingFace config, typed
 * getters with dotted keys, and the errors for bad files, missing keys and
 * wrong types (code, file name and key in the message). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static char tmp_dir[] = "/tmp/stepstone-test-config-XXXXXX";

/* Writes text to tmp_dir/name; the file's path goes into path. */
static void write_file(const char *name, const char *text, char *path, size_t size) {
    snprintf(path, size, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static int contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

static void test_golden_config(void) {
    const char *shared = shared_dir();
    char path[1024];
    struct stat st;
    if (shared) snprintf(path, sizeof path, "%s/golden/avs-tiny/config.json", shared);
    if (!shared || stat(path, &st) != 0) {
        check_skip("config/golden", "no shared data (golden/avs-tiny/config.json; set STEPSTONE_SHARED)");
        return;
    }
    config_t cfg;
    err_t err = {0};
    if (!check(config_load(path, &cfg, &err) == ERR_OK, "config/golden_load", "%s", err.msg)) return;

    int embed_dim = 0, num_queries = 0, depth2 = 0;
    check(config_get_int(&cfg, "backbone_config.embed_dim", &embed_dim, &err) == ERR_OK && embed_dim == 16,
          "config/golden_embed_dim", "got %d (%s)", embed_dim, err.msg);
    check(config_get_int(&cfg, "num_queries", &num_queries, &err) == ERR_OK && num_queries == 8,
          "config/golden_num_queries", "got %d (%s)", num_queries, err.msg);
    check(config_get_int(&cfg, "backbone_config.depths.2", &depth2, &err) == ERR_OK && depth2 == 2,
          "config/golden_array_index", "got %d (%s)", depth2, err.msg);

    int depths[8] = {0}, heads[8] = {0}, n_depths = 0, n_heads = 0;
    check(config_get_int_array(&cfg, "backbone_config.depths", depths, 8, &n_depths, &err) == ERR_OK &&
              n_depths == 4 && depths[0] == 2 && depths[3] == 2,
          "config/golden_depths", "n %d (%s)", n_depths, err.msg);
    check(config_get_int_array(&cfg, "backbone_config.num_heads", heads, 8, &n_heads, &err) == ERR_OK &&
              n_heads == 4 && heads[0] == 1 && heads[1] == 2 && heads[2] == 2 && heads[3] == 4,
          "config/golden_num_heads", "n %d (%s)", n_heads, err.msg);

    double eps = 0, mlp_ratio = 0, class_weight = 0;
    check(config_get_double(&cfg, "backbone_config.layer_norm_eps", &eps, &err) == ERR_OK && eps == 1e-5,
          "config/golden_layer_norm_eps", "got %g (%s)", eps, err.msg);
    check(config_get_double(&cfg, "backbone_config.mlp_ratio", &mlp_ratio, &err) == ERR_OK && mlp_ratio == 4.0,
          "config/golden_mlp_ratio", "got %g (%s)", mlp_ratio, err.msg);
    check(config_get_double(&cfg, "class_weight", &class_weight, &err) == ERR_OK && class_weight == 2.0,
          "config/golden_class_weight", "got %g (%s)", class_weight, err.msg);

    const char *act = NULL, *model_type = NULL, *label1 = NULL;
    check(config_get_string(&cfg, "backbone_config.hidden_act", &act, &err) == ERR_OK && act &&
              strcmp(act, "gelu") == 0,
          "config/golden_hidden_act", "got %s (%s)", act ? act : "NULL", err.msg);
    check(config_get_string(&cfg, "model_type", &model_type, &err) == ERR_OK && model_type &&
              strcmp(model_type, "mask2former") == 0,
          "config/golden_model_type", "got %s", model_type ? model_type : "NULL");
    check(config_get_string(&cfg, "id2label.1", &label1, &err) == ERR_OK && label1 && strcmp(label1, "audio") == 0,
          "config/golden_id2label", "got %s (%s)", label1 ? label1 : "NULL", err.msg);

    bool aux = false, is_decoder = true;
    check(config_get_bool(&cfg, "use_auxiliary_loss", &aux, &err) == ERR_OK && aux, "config/golden_bool_true",
          "%s", err.msg);
    check(config_get_bool(&cfg, "backbone_config.is_decoder", &is_decoder, &err) == ERR_OK && !is_decoder,
          "config/golden_bool_false", "%s", err.msg);

    /* HuggingFace writes null for unset: the fallback applies. */
    int pad = 0;
    check(config_get_int_or(&cfg, "pad_token_id", -1, &pad, &err) == ERR_OK && pad == -1,
          "config/golden_null_uses_fallback", "got %d (%s)", pad, err.msg);
    check(!config_has(&cfg, "pad_token_id") && config_has(&cfg, "num_queries"), "config/golden_has",
          "config_has disagrees");

    int missing = 123;
    err_code_t code = config_get_int(&cfg, "backbone_config.no_such_key", &missing, &err);
    check(code == ERR_NOTFOUND && contains(err.msg, path) && contains(err.msg, "backbone_config.no_such_key") &&
              missing == 123,
          "config/golden_missing_key", "code %d, msg \"%s\"", code, err.msg);
    config_free(&cfg);
}

static void test_getters_and_errors(void) {
    char path[512];
    write_file("cfg.json",
               "{\n"
               "  \"model\": {\"dim\": 256, \"ratio\": 4.0, \"scale\": 16.5, \"name\": \"swin\",\n"
               "            \"big\": 9999999999, \"flag\": true, \"nothing\": null,\n"
               "            \"sizes\": [224, 224], \"mixed\": [1, \"two\", 3], \"empty\": []},\n"
               "  \"lr\": 1e-4,\n"
               "  \"list\": [{\"k\": 7}]\n"
               "}\n",
               path, sizeof path);
    config_t cfg;
    err_t err = {0};
    if (!check(config_load(path, &cfg, &err) == ERR_OK, "config/load", "%s", err.msg)) return;

    int v = 0;
    check(config_get_int(&cfg, "model.dim", &v, &err) == ERR_OK && v == 256, "config/int", "got %d", v);
    check(config_get_int(&cfg, "model.ratio", &v, &err) == ERR_OK && v == 4, "config/int_from_integral_real",
          "got %d (%s)", v, err.msg);
    check(config_get_int(&cfg, "list.0.k", &v, &err) == ERR_OK && v == 7, "config/int_through_array", "got %d (%s)",
          v, err.msg);

    double d = 0;
    check(config_get_double(&cfg, "model.dim", &d, &err) == ERR_OK && d == 256.0, "config/double_from_integer",
          "got %g", d);
    check(config_get_double(&cfg, "lr", &d, &err) == ERR_OK && d == 1e-4, "config/double", "got %g", d);
    check(config_get_double_or(&cfg, "model.nope", 0.5, &d, &err) == ERR_OK && d == 0.5, "config/double_or",
          "got %g", d);

    const char *s = NULL;
    check(config_get_string_or(&cfg, "model.arch", "default", &s, &err) == ERR_OK && strcmp(s, "default") == 0,
          "config/string_or", "got %s", s ? s : "NULL");
    bool b = false;
    check(config_get_bool_or(&cfg, "model.nothing", true, &b, &err) == ERR_OK && b, "config/bool_or_null",
          "%s", err.msg);

    int sizes[2] = {0}, n = 0;
    check(config_get_int_array(&cfg, "model.sizes", sizes, 2, &n, &err) == ERR_OK && n == 2 && sizes[1] == 224,
          "config/int_array", "n %d (%s)", n, err.msg);
    n = -1;
    check(config_get_int_array(&cfg, "model.empty", sizes, 2, &n, &err) == ERR_OK && n == 0,
          "config/int_array_empty", "n %d (%s)", n, err.msg);
    check(config_lookup(&cfg, "model.sizes.1") != NULL && config_lookup(&cfg, "model.sizes.2") == NULL,
          "config/lookup", "lookup of array elements");

    /* Every error names the file and the key, with the right code, and
     * leaves the output alone. */
    struct {
        const char *name, *key;
        err_code_t code;
        const char *words; /* also in the message */
    } cases[] = {
        {"config/missing_key", "model.depth", ERR_NOTFOUND, "missing"},
        {"config/missing_parent", "encoder.depth", ERR_NOTFOUND, "missing"},
        {"config/null_required", "model.nothing", ERR_NOTFOUND, "null"},
        {"config/wrong_type_string", "model.name", ERR_MISMATCH, "a string"},
        {"config/wrong_type_real", "model.scale", ERR_MISMATCH, "16.5"},
        {"config/out_of_int_range", "model.big", ERR_MISMATCH, "range"},
        {"config/through_scalar", "model.dim.x", ERR_MISMATCH, "not an object"},
        {"config/array_index_past_end", "model.sizes.5", ERR_NOTFOUND, "missing"},
        {"config/malformed_key", "model..dim", ERR_ARG, "malformed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v = -7;
        memset(&err, 0, sizeof err);
        err_code_t code = config_get_int(&cfg, cases[i].key, &v, &err);
        check(code == cases[i].code && err.code == code && contains(err.msg, path) &&
                  contains(err.msg, cases[i].key) && contains(err.msg, cases[i].words) && v == -7,
              cases[i].name, "code %d (want %d), msg \"%s\"", code, cases[i].code, err.msg);
    }

    /* The fallback form never hides a wrong value. */
    v = -7;
    err_code_t code = config_get_int_or(&cfg, "model.name", 3, &v, &err);
    check(code == ERR_MISMATCH && v == -7 && contains(err.msg, "model.name"), "config/int_or_wrong_type",
          "code %d, msg \"%s\"", code, err.msg);
    code = config_get_bool(&cfg, "model.dim", &b, &err);
    check(code == ERR_MISMATCH && contains(err.msg, "model.dim") && contains(err.msg, "true or false"),
          "config/bool_wrong_type", "code %d, msg \"%s\"", code, err.msg);
    code = config_get_string(&cfg, "model.flag", &s, &err);
    check(code == ERR_MISMATCH && contains(err.msg, "a boolean"), "config/string_wrong_type", "code %d, msg \"%s\"",
          code, err.msg);
    code = config_get_double(&cfg, "model.name", &d, &err);
    check(code == ERR_MISMATCH && contains(err.msg, path), "config/double_wrong_type", "code %d, msg \"%s\"", code,
          err.msg);

    int three[3] = {-1, -1, -1};
    code = config_get_int_array(&cfg, "model.mixed", three, 3, &n, &err);
    check(code == ERR_MISMATCH && contains(err.msg, "model.mixed.1") && three[0] == -1, "config/int_array_bad_element",
          "code %d, msg \"%s\"", code, err.msg);
    code = config_get_int_array(&cfg, "model.sizes", three, 1, &n, &err);
    check(code == ERR_MISMATCH && contains(err.msg, "model.sizes") && three[0] == -1, "config/int_array_too_long",
          "code %d, msg \"%s\"", code, err.msg);
    code = config_get_int_array(&cfg, "model.dim", three, 3, &n, &err);
    check(code == ERR_MISMATCH && contains(err.msg, "an integer"), "config/int_array_not_array",
          "code %d, msg \"%s\"", code, err.msg);
    config_free(&cfg);
    config_free(&cfg); /* safe twice */
}

static void test_bad_files(void) {
    char path[512];
    config_t cfg;
    err_t err = {0};

    snprintf(path, sizeof path, "%s/no-such-config.json", tmp_dir);
    err_code_t code = config_load(path, &cfg, &err);
    check(code == ERR_IO && contains(err.msg, path) && contains(err.msg, "No such file") && cfg.root == NULL,
          "config/missing_file", "code %d, msg \"%s\"", code, err.msg);
    config_free(&cfg);

    /* After the trailing comma the parser stops at the '}' on line 3. */
    write_file("bad.json", "{\n  \"a\": 1,\n}\n", path, sizeof path);
    code = config_load(path, &cfg, &err);
    check(code == ERR_FORMAT && contains(err.msg, path) && contains(err.msg, ":3:") && cfg.root == NULL,
          "config/syntax_error_line_column", "code %d, msg \"%s\"", code, err.msg);
    config_free(&cfg);

    write_file("empty.json", "", path, sizeof path);
    code = config_load(path, &cfg, &err);
    check(code == ERR_FORMAT && contains(err.msg, path), "config/empty_file", "code %d, msg \"%s\"", code, err.msg);

    write_file("dup.json", "{\"a\": 1, \"a\": 2}", path, sizeof path);
    code = config_load(path, &cfg, &err);
    check(code == ERR_FORMAT && contains(err.msg, path) && contains(err.msg, "duplicate"), "config/duplicate_key",
          "code %d, msg \"%s\"", code, err.msg);

    write_file("array.json", "[1, 2, 3]", path, sizeof path);
    code = config_load(path, &cfg, &err);
    check(code == ERR_FORMAT && contains(err.msg, path) && contains(err.msg, "an array"), "config/top_level_not_object",
          "code %d, msg \"%s\"", code, err.msg);

    code = config_load(tmp_dir, &cfg, &err); /* a folder */
    check(code == ERR_IO && contains(err.msg, tmp_dir), "config/folder_is_io_error", "code %d, msg \"%s\"", code,
          err.msg);
    config_free(&cfg);

    /* A config built in memory names its origin. */
    json_t *root = json_pack("{s:i}", "epochs", 5);
    code = config_from_json(&cfg, root, "manifest.json:config", &err);
    json_decref(root);
    int epochs = 0;
    check(code == ERR_OK && config_get_int(&cfg, "epochs", &epochs, &err) == ERR_OK && epochs == 5,
          "config/from_json", "%s", err.msg);
    code = config_get_int(&cfg, "batch", &epochs, &err);
    check(code == ERR_NOTFOUND && contains(err.msg, "manifest.json:config"), "config/from_json_origin_in_message",
          "msg \"%s\"", err.msg);
    config_free(&cfg);
}

static void remove_tmp_dir(void) {
    const char *names[] = {"cfg.json", "bad.json", "empty.json", "dup.json", "array.json"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, names[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_golden_config();
    test_getters_and_errors();
    test_bad_files();
    remove_tmp_dir();
    return check_finish("test_config");
}
