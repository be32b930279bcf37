// Parse time per frame for the default (boxes + scores) and top-class layouts.
//   parser_bench ANCHORS CLASSES ITERATIONS THRESHOLD   -> one JSON line per layout
// Scores are drawn as a trained detector's are: mostly near zero, a few anchors confident.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "edgeexport_parser.h"
#include "layer_helpers.h"


template <class F>
static double median_us(F f, int iters) {
    std::vector<double> t(iters);
    for (int i = 0; i < iters; ++i) {
        auto a = std::chrono::steady_clock::now();
        f();
        t[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count();
    }
    std::sort(t.begin(), t.end());
    return t[iters / 2];
}

int main(int argc, char **argv) {
    unsigned n = argc > 1 ? (unsigned)std::atoi(argv[1]) : 3234, k = argc > 2 ? (unsigned)std::atoi(argv[2]) : 90;
    int iters = argc > 3 ? std::atoi(argv[3]) : 2000;
    float thr = argc > 4 ? (float)std::atof(argv[4]) : 0.4f;
    if (n < 1 || k < 1 || iters < 1 || !(thr >= 0.0f && thr <= 1.0f)) {
        std::fprintf(stderr, "usage: parser_bench ANCHORS>=1 CLASSES>=1 ITERATIONS>=1 THRESHOLD(0..1)\n");
        return 2;
    }
    std::mt19937 rng(0);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> boxes(4ull * n), scores((size_t)n * k), top_score(n), top_class(n);
    for (unsigned i = 0; i < n; ++i) {
        float x = u(rng) * 0.8f, y = u(rng) * 0.8f;
        boxes[4 * i] = x, boxes[4 * i + 1] = y, boxes[4 * i + 2] = x + 0.1f, boxes[4 * i + 3] = y + 0.1f;
        float best = 0.0f;
        unsigned arg = 0;
        for (unsigned c = 0; c < k; ++c) {
            float s = u(rng);
            s = s * s * s * s * s * s * 0.3f;  // near zero, as softmax over many classes is
            if (i % 97 == 0 && c == i % k) s = 0.9f;  // a few confident anchors
            scores[(size_t)i * k + c] = s;
            if (s > best) best = s, arg = c;
        }
        top_score[i] = best;
        top_class[i] = (float)arg;
    }
    NvDsInferNetworkInfo net = {320, 320, 3};
    NvDsInferParseDetectionParams p;
    p.numClassesConfigured = k;
    p.perClassPreclusterThreshold.assign(k, thr);
    std::vector<NvDsInferLayerInfo> dl = {makeLayer("boxes", boxes.data(), FLOAT, n, 4), makeLayer("scores", scores.data(), FLOAT, n, k)};
    std::vector<NvDsInferLayerInfo> tl = {makeLayer("boxes", boxes.data(), FLOAT, n, 4), makeLayer("top_score", top_score.data(), FLOAT, n),
                                          makeLayer("top_class", top_class.data(), FLOAT, n)};
    std::vector<NvDsInferObjectDetectionInfo> out;
    out.reserve(4096);
    size_t nd = 0, nt = 0;
    double d = median_us([&] { out.clear(); NvDsInferParseEdgeExport(dl, net, p, out); nd = out.size(); }, iters);
    double t = median_us([&] { out.clear(); NvDsInferParseEdgeExportTopClass(tl, net, p, out); nt = out.size(); }, iters);
    unsigned long long bytes_default = 4ull * (4ull * n + (unsigned long long)n * k);
    unsigned long long bytes_top = 4ull * (4ull * n + 2ull * n);
    std::printf("{\"layout\": \"boxes_scores\", \"anchors\": %u, \"classes\": %u, \"median_us\": %.2f, "
                "\"bytes_per_frame\": %llu, \"objects\": %zu}\n", n, k, d, bytes_default, nd);
    std::printf("{\"layout\": \"top_class\", \"anchors\": %u, \"classes\": %u, \"median_us\": %.2f, "
                "\"bytes_per_frame\": %llu, \"objects\": %zu}\n", n, k, t, bytes_top, nt);
    return 0;
}
