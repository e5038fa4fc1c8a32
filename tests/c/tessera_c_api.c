/* The Tessera C API as a C program uses it: a small transfer between two zoo models, the token
 * it wrote loaded back, re-saved and compared, the two-party protocol (emit, then absorb from
 * the token alone), and bad calls answered with a status and a message instead of a crash.
 *
 * usage: tessera_c_api TRANSMITTER RECEIVER INPUTS VAL_INPUTS VAL_LABELS OUT_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"

static int failures = 0;

#define CHECK(condition, ...)                                                  \
    do {                                                                       \
        if (!(condition)) {                                                    \
            fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, " (last error: %s)\n",                             \
                    tessera_last_error() ? tessera_last_error() : "none");     \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static char *join(const char *folder, const char *name) {
    size_t length = strlen(folder) + strlen(name) + 2;
    char *path = malloc(length);
    snprintf(path, length, "%s/%s", folder, name);
    return path;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s TX RX INPUTS VAL_INPUTS VAL_LABELS OUT_DIR\n", argv[0]);
        return 2;
    }
    char *tuned = join(argv[6], "tuned.onnx");
    char *token_path = join(argv[6], "knowledge.tbf");
    char *copy_path = join(argv[6], "copy.tbf");
    char *report = NULL;

    TesseraStatus status = tessera_transfer(
        argv[1], argv[2], argv[3], argv[4], argv[5], tuned, token_path,
        "{\"epochs\": 2, \"hub_epochs\": 2, \"hub_dim\": 64, \"seed\": 1}", &report);
    CHECK(status == TESSERA_STATUS_OK, "transfer returned %d", (int)status);
    CHECK(report != NULL && strstr(report, "\"agreement\"") != NULL, "the report names agreement");
    CHECK(tessera_last_error() == NULL, "no error after a success");
    tessera_string_free(report);

    TesseraToken *token = NULL;
    status = tessera_token_load(token_path, NULL, 0, &token);
    CHECK(status == TESSERA_STATUS_OK && token != NULL, "the token loads back");
    size_t length = 0;
    const float *vector = tessera_token_vector(token, &length);
    CHECK(vector != NULL && length > 0, "the token carries a vector");
    uint64_t dims[8];
    size_t rank = 0;
    status = tessera_token_shape(token, dims, 8, &rank);
    CHECK(status == TESSERA_STATUS_OK && rank >= 1, "the token has a shape");
    uint64_t elements = 1;
    for (size_t axis = 0; axis < rank; axis++) elements *= dims[axis];
    CHECK(elements == length, "shape and vector agree");
    CHECK(tessera_token_shape(token, dims, 0, &rank) == TESSERA_STATUS_INVALID_ARGUMENT,
          "too little room for the shape is refused");
    char *metadata = NULL;
    status = tessera_token_metadata(token, &metadata);
    CHECK(status == TESSERA_STATUS_OK && strstr(metadata, "knowledge_type") != NULL,
          "metadata is JSON with the knowledge type");
    tessera_string_free(metadata);

    uint64_t bytes = 0;
    const uint8_t key[] = {1, 2, 3, 4};
    status = tessera_token_save(token, copy_path, "float32", "ieee", key, sizeof key, &bytes);
    CHECK(status == TESSERA_STATUS_OK && bytes > 0, "the token saves");
    TesseraToken *copy = NULL;
    status = tessera_token_load(copy_path, key, sizeof key, &copy);
    CHECK(status == TESSERA_STATUS_OK, "the copy loads with its HMAC key");
    size_t copy_length = 0;
    const float *copy_vector = tessera_token_vector(copy, &copy_length);
    CHECK(copy_length == length && copy_vector != NULL, "the copy has the same length");
    int same = copy_vector != NULL && vector != NULL;
    for (size_t i = 0; same && i < length; i++) same = copy_vector[i] == vector[i];
    CHECK(same, "float32 keeps the float16 token's values exactly");
    tessera_token_free(copy);
    const uint8_t wrong[] = {9, 9};
    copy = NULL;
    status = tessera_token_load(copy_path, wrong, sizeof wrong, &copy);
    CHECK(status == TESSERA_STATUS_TOKEN && copy == NULL, "a wrong HMAC key is refused");
    CHECK(tessera_last_error() != NULL && strlen(tessera_last_error()) > 0, "with a message");

    char *verdict = NULL;
    status = tessera_token_validate(token_path, NULL, 0, &verdict);
    CHECK(status == TESSERA_STATUS_OK && strstr(verdict, "\"valid\":true") != NULL, "valid");
    tessera_string_free(verdict);
    char *inspection = NULL;
    status = tessera_inspect_model(argv[2], NULL, &inspection);
    CHECK(status == TESSERA_STATUS_OK && strstr(inspection, "\"adapter\"") != NULL,
          "the receiver is inspected");
    tessera_string_free(inspection);
    tessera_token_free(token);

    /* Two parties: the transmitter's side emits, the receiver's side absorbs the token. */
    char *emitted = join(argv[6], "emitted.tbf");
    char *absorbed = join(argv[6], "absorbed.onnx");
    report = NULL;
    status = tessera_emit(argv[1], argv[3], argv[4], emitted,
                          "{\"epochs\": 2, \"hub_epochs\": 2, \"hub_dim\": 64, \"epsilon\": \"inf\"}",
                          &report);
    CHECK(status == TESSERA_STATUS_OK, "emit returned %d", (int)status);
    CHECK(report != NULL && strstr(report, "\"synthetic_sets\"") != NULL,
          "the emit report names the synthetic sets");
    tessera_string_free(report);
    report = NULL;
    status = tessera_absorb(emitted, argv[2], argv[3], argv[4], argv[5], absorbed,
                            "{\"seed\": 1}", &report);
    CHECK(status == TESSERA_STATUS_OK, "absorb returned %d", (int)status);
    CHECK(report != NULL && strstr(report, "\"agreement\"") != NULL,
          "the absorb report names agreement");
    tessera_string_free(report);
    status = tessera_absorb(emitted, argv[2], argv[4], NULL, NULL, absorbed, NULL, NULL);
    CHECK(status == TESSERA_STATUS_TRANSFER && strstr(tessera_last_error(), "fingerprint") != NULL,
          "inputs the knowledge was not emitted for are refused (%d)", (int)status);
    status = tessera_absorb(emitted, argv[2], argv[3], argv[4], NULL, absorbed,
                            "{\"quant\": \"int3\"}", NULL);
    CHECK(status == TESSERA_STATUS_INVALID_ARGUMENT, "an unknown precision is refused");
    status = tessera_emit(argv[1], argv[3], NULL, emitted, "{\"quant\": \"int8\"}", NULL);
    CHECK(status == TESSERA_STATUS_INVALID_ARGUMENT && strstr(tessera_last_error(), "quant") != NULL,
          "the receiver's settings are refused by emit");
    free(emitted);
    free(absorbed);

    /* Bad calls: a status and a message, never a crash. */
    CHECK(tessera_token_load(NULL, NULL, 0, &token) == TESSERA_STATUS_INVALID_ARGUMENT,
          "a null path is refused");
    CHECK(tessera_token_load(token_path, NULL, 0, NULL) == TESSERA_STATUS_INVALID_ARGUMENT,
          "a null out pointer is refused");
    CHECK(tessera_token_load(argv[1], NULL, 0, &token) == TESSERA_STATUS_TOKEN,
          "a model is not a token");
    CHECK(tessera_token_vector(NULL, &length) == NULL && length == 0, "a null token has no vector");
    status = tessera_transfer(argv[1], argv[2], argv[3], NULL, NULL, tuned, token_path,
                              "{\"epoch\": 2}", NULL);
    CHECK(status == TESSERA_STATUS_INVALID_ARGUMENT &&
              strstr(tessera_last_error(), "epoch") != NULL,
          "an unknown setting is refused by name");
    status = tessera_transfer(argv[1], argv[2], argv[1], NULL, NULL, tuned, token_path, NULL,
                              NULL);
    CHECK(status == TESSERA_STATUS_DATA, "a model given as inputs is a data error (%d)",
          (int)status);
    tessera_string_free(NULL);
    tessera_token_free(NULL);
    CHECK(strlen(tessera_version()) > 0, "a version");

    free(tuned);
    free(token_path);
    free(copy_path);
    if (failures == 0) printf("C API: all checks passed\n");
    return failures == 0 ? 0 : 1;
}
