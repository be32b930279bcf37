// ctest unit tests of the parser entry points (no framework: each CHECK prints and counts a failure).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "edgeexport_parser.h"
#include "layer_helpers.h"


static int failures = 0;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::printf("%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                          \
        }                                                                        \
    } while (0)

static NvDsInferParseDetectionParams params(unsigned k, float thr) {
    NvDsInferParseDetectionParams p;
    p.numClassesConfigured = k;
    p.perClassPreclusterThreshold.assign(k, thr);
    p.perClassPostclusterThreshold.assign(k, 0.0f);
    return p;
}

int main() {
    NvDsInferNetworkInfo net = {320, 160, 3};
    // 3 anchors, 2 classes
    float boxes[12] = {0.1f, 0.2f, 0.5f, 0.6f, 0.0f, 0.0f, 1.0f, 1.0f, NAN, 0.0f, 1.0f, 1.0f};
    float scores[6] = {0.9f, 0.1f, 0.45f, 0.7f, 0.99f, 0.99f};
    std::vector<NvDsInferLayerInfo> layers = {makeLayer("scores", scores, FLOAT, 3, 2), makeLayer("boxes", boxes, FLOAT, 3, 4)};
    std::vector<NvDsInferObjectDetectionInfo> out;

    // boxes go out in network pixels; thresholds per class; NaN boxes skipped
    CHECK(NvDsInferParseEdgeExport(layers, net, params(2, 0.5f), out));
    CHECK(out.size() == 2);
    CHECK(out[0].classId == 0 && std::fabs(out[0].left - 32.0f) < 1e-4 && std::fabs(out[0].top - 32.0f) < 1e-4);
    CHECK(std::fabs(out[0].width - 128.0f) < 1e-4 && std::fabs(out[0].height - 64.0f) < 1e-4);
    CHECK(out[1].classId == 1 && std::fabs(out[1].detectionConfidence - 0.7f) < 1e-6);

    NvDsInferParseDetectionParams p = params(2, 0.5f);
    p.perClassPreclusterThreshold[1] = 0.8f;  // per-class threshold
    out.clear();
    CHECK(NvDsInferParseEdgeExport(layers, net, p, out) && out.size() == 1);

    out.clear();  // classes beyond num-detected-classes ignored
    CHECK(NvDsInferParseEdgeExport(layers, net, params(1, 0.5f), out) && out.size() == 1);

    out.clear();  // zero classes configured
    CHECK(!NvDsInferParseEdgeExport(layers, net, params(0, 0.5f), out) && out.empty());

    // missing layer, wrong dims, wrong numElements, wrong type, null buffer, anchor mismatch
    std::vector<NvDsInferLayerInfo> bad = {layers[1]};
    CHECK(!NvDsInferParseEdgeExport(bad, net, params(2, 0.5f), out));
    bad = layers;
    bad[1].inferDims.d[1] = 5;
    CHECK(!NvDsInferParseEdgeExport(bad, net, params(2, 0.5f), out));
    bad = layers;
    bad[0].inferDims.numElements = 7;
    CHECK(!NvDsInferParseEdgeExport(bad, net, params(2, 0.5f), out));
    bad = layers;
    bad[0].dataType = HALF;
    CHECK(!NvDsInferParseEdgeExport(bad, net, params(2, 0.5f), out));
    bad = layers;
    bad[0].buffer = nullptr;
    CHECK(!NvDsInferParseEdgeExport(bad, net, params(2, 0.5f), out));
    bad = layers;
    bad[0].inferDims.d[0] = 2;
    bad[0].inferDims.numElements = 4;
    CHECK(!NvDsInferParseEdgeExport(bad, net, params(2, 0.5f), out));
    bad = layers;
    bad[0].inferDims.numDims = 9;
    CHECK(!NvDsInferParseEdgeExport(bad, net, params(2, 0.5f), out));
    CHECK(out.empty());

    // infinite scores skipped
    float inf_scores[6] = {std::numeric_limits<float>::infinity(), 0.0f, NAN, 0.0f, 0.0f, 0.0f};
    std::vector<NvDsInferLayerInfo> infl = {makeLayer("boxes", boxes, FLOAT, 3, 4), makeLayer("scores", inf_scores, FLOAT, 3, 2)};
    CHECK(NvDsInferParseEdgeExport(infl, net, params(2, 0.5f), out) && out.empty());

    // top-class layout
    float top_score[3] = {0.9f, 0.6f, 0.95f};
    float top_class[3] = {1.0f, 7.0f, 0.0f};
    std::vector<NvDsInferLayerInfo> tl = {makeLayer("boxes", boxes, FLOAT, 3, 4), makeLayer("top_score", top_score, FLOAT, 3),
                                          makeLayer("top_class", top_class, FLOAT, 3)};
    out.clear();
    CHECK(NvDsInferParseEdgeExportTopClass(tl, net, params(2, 0.5f), out));
    CHECK(out.size() == 1 && out[0].classId == 1);  // class 7 ignored, NaN box skipped

    // EfficientNMS layout
    int32_t num[1] = {5};  // more than M: clamped
    float dboxes[8] = {0.0f, 0.0f, 0.5f, 0.5f, 0.5f, 0.5f, 1.0f, 1.0f};
    float dscores[2] = {0.8f, 0.3f};
    int32_t dclasses[2] = {1, 0};
    std::vector<NvDsInferLayerInfo> nl = {makeLayer("num_detections", num, INT32, 1), makeLayer("detection_boxes", dboxes, FLOAT, 2, 4),
                                          makeLayer("detection_scores", dscores, FLOAT, 2),
                                          makeLayer("detection_classes", dclasses, INT32, 2)};
    out.clear();
    CHECK(NvDsInferParseEdgeExportNMS(nl, net, params(2, 0.5f), out));
    CHECK(out.size() == 1 && out[0].classId == 1 && std::fabs(out[0].width - 160.0f) < 1e-4);
    num[0] = -3;
    out.clear();
    CHECK(NvDsInferParseEdgeExportNMS(nl, net, params(2, 0.0f), out) && out.empty());
    nl[0].dataType = FLOAT;
    CHECK(!NvDsInferParseEdgeExportNMS(nl, net, params(2, 0.0f), out));

    std::printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
