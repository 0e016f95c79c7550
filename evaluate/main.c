/* stepstone-evaluate - AVSBench metrics, scored as the official code scores
 * them, and a visual report. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "log.h"

enum { EXIT_COMPLETE = 0, EXIT_ERROR = 1, EXIT_USAGE = 2, EXIT_INCOMPLETE = 3 };

static void usage(FILE *f) {
    fputs(
        "usage: stepstone-evaluate --task s4|ms3|avss --data DIR --pred DIR [options]\n"
        "\n"
        "Scores predicted masks against AVSBench ground truth with the official metrics\n"
        "(Stepping-Stones / AVSBench code, reproduced to float32 rounding) and writes\n"
        "them to a JSON file.\n"
        "\n"
        "  --task T        avss (semantic, 71 classes), s4 (subset v1s) or ms3 (v1m)\n"
        "  --data DIR      the AVSBench tree: AVSBench-semantic (metadata.csv,\n"
        "                  label2idx.json, v1s/ v1m/ v2/) or, for s4/ms3, the\n"
        "                  AVSBench-object folder holding s4_meta_data.csv or\n"
        "                  ms3_meta_data.csv (or its parent, with --layout)\n"
        "  --pred DIR      predictions: DIR/<subset>/<uid>/<i>.png, i = 0.. (for the\n"
        "                  object layout also AVSBench's DIR/[<category>/]<uid>/<uid>_<i>.png)\n"
        "  --split S       train, val or test (default test)\n"
        "  --out FILE      the metrics file (default metrics.json)\n"
        "  --report DIR    also write a visual report: per-video PNG strips (frames,\n"
        "                  ground truth, prediction overlaid), a per-class IoU bar\n"
        "                  chart (avss) and DIR/index.html\n"
        "  --report-videos N  strips in the report: the N/2 worst and N/2 best\n"
        "                  videos (default 24)\n"
        "  --layout L      auto (default), semantic, s4 or ms3\n"
        "  -h, --help      this text\n"
        "\n"
        "Predictions:\n"
        "  avss    8-bit gray PNGs of class ids 0..70, or palette/RGB PNGs in the\n"
        "          71-colour palette (colours outside it count as class 0 and are\n"
        "          reported). Ground truth and predictions of any size are brought\n"
        "          to 224x224 with PIL's nearest rule, as the official loader does.\n"
        "  s4/ms3  8-bit gray PNGs: 0/255 masks (0/1 masks are accepted) or\n"
        "          probabilities p = v/255. The IoU mask is p > 0.5 (v >= 128); the\n"
        "          F-score thresholds p at 255 levels. p is the probability the\n"
        "          official F-measure thresholds: sigmoid(logit) for AVSBench,\n"
        "          sigmoid(2*l1 - l0) for Stepping-Stones' two channels (whose IoU\n"
        "          mask, argmax, is then p > 0.5 for l0 = 0, l1 = logit(p)/2). A 0/255\n"
        "          mask scores the F-score of a hard prediction. Gray PNGs of another\n"
        "          size are resized with OpenCV's bilinear rule. Palette/RGB PNGs are\n"
        "          read as colour label maps, like the binary ground truth, which is\n"
        "          Stepping-Stones' rule: cv2 bilinear resize to 224, gray > 0.\n"
        "\n"
        "Metrics (see metrics.json's _doc fields):\n"
        "  avss    miou, fscore (official: mean over all 71 classes, so k/71 for a\n"
        "          perfect prediction on k classes), miou_nb, fscore_nb (classes\n"
        "          1..70), miou_occurring, fscore_occurring (over the classes that\n"
        "          occur), and the per-class table\n"
        "  s4/ms3  miou and the max F-score (beta^2 = 0.3), means over videos; also\n"
        "          rounded to 6 digits as the official test_avs prints them\n"
        "\n"
        "A missing or unreadable prediction is named in the log and in the\n"
        "metrics file's \"problems\", counted, and scored as an all-background frame.\n"
        "\n"
        "Exit status:\n"
        "  0  complete: every prediction was read; metrics written\n"
        "  1  error: the data set or a ground-truth file could not be read, or an\n"
        "     output could not be written (the message names the file)\n"
        "  2  bad command line\n"
        "  3  incomplete: metrics written, but some predictions were missing or\n"
        "     unreadable\n",
        f);
}

static int bad_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "stepstone-evaluate: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(stepstone-evaluate --help for the options)\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    log_set_program("stepstone-evaluate");
    eval_options_t o = {.task = -1, .out = "metrics.json", .split = AVS_TEST, .layout = AVS_LAYOUT_AUTO,
                        .report_videos = 24};
    int task_set = 0;
    static const struct option opts[] = {
        {"task", required_argument, 0, 't'},   {"data", required_argument, 0, 'd'},
        {"pred", required_argument, 0, 'p'},   {"split", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},    {"report", required_argument, 0, 'r'},
        {"report-videos", required_argument, 0, 'n'},
        {"layout", required_argument, 0, 'l'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (strcmp(optarg, "s4") == 0) o.task = EVAL_S4;
            else if (strcmp(optarg, "ms3") == 0) o.task = EVAL_MS3;
            else if (strcmp(optarg, "avss") == 0) o.task = EVAL_AVSS;
            else return bad_usage("unknown task '%s' (s4, ms3 or avss)", optarg);
            task_set = 1;
            break;
        case 'd': o.data = optarg; break;
        case 'p': o.pred = optarg; break;
        case 's':
            if (avs_parse_split(optarg, &o.split)) return bad_usage("unknown split '%s' (train, val or test)", optarg);
            break;
        case 'o': o.out = optarg; break;
        case 'r': o.report = optarg; break;
        case 'n': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 100000) return bad_usage("--report-videos wants a count, not '%s'", optarg);
            o.report_videos = (int)v;
            break;
        }
        case 'l':
            if (avs_parse_layout(optarg, &o.layout))
                return bad_usage("unknown layout '%s' (auto, semantic, s4 or ms3)", optarg);
            break;
        case 'h': usage(stdout); return EXIT_COMPLETE;
        default: return bad_usage("%s", "bad option");
        }
    }
    if (optind < argc) return bad_usage("unexpected argument '%s'", argv[optind]);
    if (!task_set) return bad_usage("%s", "--task is required");
    if (!o.data) return bad_usage("%s", "--data is required");
    if (!o.pred) return bad_usage("%s", "--pred is required");

    eval_result_t r;
    err_t err = {0};
    if (eval_run(&o, &r, &err)) {
        log_error("%s", err.msg);
        eval_result_free(&r);
        return EXIT_ERROR;
    }
    if (eval_write_json(&o, &r, &err)) {
        log_error("%s", err.msg);
        eval_result_free(&r);
        return EXIT_ERROR;
    }
    if (o.task == EVAL_AVSS)
        log_info("avss %s: miou %.6f  fscore %.6f  (official, 71 classes); over the %d classes that occur: miou %.6f  "
                 "fscore %.6f; miou_nb %.6f  fscore_nb %.6f",
                 avs_split_name(o.split), r.avss.miou, r.avss.fscore, r.avss.n_occurring, r.avss.miou_occurring,
                 r.avss.fscore_occurring, r.avss.miou_nb, r.avss.fscore_nb);
    else
        log_info("%s %s: miou %.6f  fscore %.6f  (%lld videos, %lld frames, %lld with empty truth)",
                 eval_task_name(o.task), avs_split_name(o.split), r.bin.miou, r.bin.fscore, (long long)r.bin.videos,
                 (long long)r.bin.frames, (long long)r.bin.empty_frames);
    log_info("metrics written to %s", o.out);
    if (o.report) {
        if (eval_write_report(&o, &r, &err)) {
            log_error("%s", err.msg);
            eval_result_free(&r);
            return EXIT_ERROR;
        }
        log_info("report written to %s/index.html", o.report);
    }
    int complete = eval_complete(&r);
    eval_result_free(&r);
    return complete ? EXIT_COMPLETE : EXIT_INCOMPLETE;
}
