/* glqjit C ABI: E8P-RVQ quantized linear layers on NVIDIA GPUs.
 *
 * Life cycle: create a context per device, create one linear per quantized layer at model
 * load (this compiles or loads kernels and may take a while), then call
 * glqjit_linear_forward on a stream as often as needed, inside or outside CUDA graph capture.
 * Every function that can fail returns a status; glqjit_last_error() then holds a message for
 * the calling thread that says what was wrong and what to do. No function aborts the process.
 */
#ifndef GLQJIT_GLQJIT_H
#define GLQJIT_GLQJIT_H

#include <stddef.h>
#include <stdint.h>

/* Marks what libglqjit.so exports: it is built with hidden visibility, so the C ABI below is
 * all a program can bind to. */
#if defined(__GNUC__) || defined(__clang__)
#define GLQJIT_API __attribute__((visibility("default")))
#else
#define GLQJIT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum glqjit_status {
  GLQJIT_OK = 0,
  GLQJIT_INVALID_ARGUMENT = 1,    /* a null pointer, a bad size, a misaligned pointer, ... */
  GLQJIT_UNSUPPORTED_SHAPE = 2,   /* features or bpw outside what glqjit supports */
  GLQJIT_UNSUPPORTED_ARCH = 3,    /* the GPU is older than compute capability 8.0 */
  GLQJIT_NO_DRIVER = 4,           /* libcuda could not be loaded or has no device */
  GLQJIT_CUDA_ERROR = 5,          /* a CUDA driver call failed */
  GLQJIT_COMPILE_ERROR = 6,       /* NVRTC rejected a kernel; the message holds its log */
  GLQJIT_CACHE_ERROR = 7,         /* the kernel store could not be opened or written */
  GLQJIT_CAPTURE_IN_PROGRESS = 8, /* the call would have to allocate, sync or compile during capture */
  GLQJIT_NO_JIT = 9,              /* a kernel is missing from the store and JIT is disabled */
  GLQJIT_INTERNAL = 10
} glqjit_status;

typedef enum glqjit_dtype { GLQJIT_FLOAT16 = 0, GLQJIT_BFLOAT16 = 1 } glqjit_dtype;

typedef struct glqjit_context glqjit_context;
typedef struct glqjit_linear glqjit_linear;

typedef struct glqjit_context_options {
  const char* cache_path; /* NULL: $GLQJIT_CACHE, else $XDG_CACHE_HOME/glqjit/glqjit.db, else ~/.cache/glqjit/glqjit.db */
  int no_jit;             /* nonzero: never compile; a kernel missing from the store is an error */
  int read_only_cache;    /* nonzero: never write the store */
} glqjit_context_options;

enum {
  GLQJIT_LINEAR_LEGACY_SINGLE_BLOCK_RHT = 1u << 0, /* checkpoint with block_diagonal: false */
  GLQJIT_LINEAR_ALLOW_NONDETERMINISTIC = 1u << 1,
  GLQJIT_LINEAR_LAZY_BUCKETS = 1u << 2             /* compile a batch bucket at its first forward (never
                                                      inside stream capture) instead of at create */
};

typedef struct glqjit_linear_desc {
  int64_t in_features;
  int64_t out_features;
  int bpw;            /* 2..8 */
  glqjit_dtype dtype; /* activation and output dtype */
  int max_batch;      /* largest batch forward will be called with */
  uint32_t flags;     /* GLQJIT_LINEAR_* */
} glqjit_linear_desc;

/* Device pointers to the checkpoint tensors of FORMAT.md section 7, 16-byte aligned. stages[k]
 * is the packed int64 tensor of stage k (Qidxs_e8p, then Qidxs2_*, ...); the stage count follows
 * from bpw. E8P stages, SU, SV and bias are read in place, so they must stay allocated and
 * unchanged while the linear lives; E81B stages are repacked into the linear's own memory at
 * create. The scalars are copied. */
typedef struct glqjit_linear_weights {
  const void* stages[4];
  const void* su;   /* fp16, m_pad */
  const void* sv;   /* fp16, n_pad */
  const void* bias; /* NULL (no bias) or out_features values in the activation dtype */
  float wscale;
  float inv_resid_scale[3]; /* c_1, c_2, c_3 where the stage exists */
} glqjit_linear_weights;

GLQJIT_API glqjit_status glqjit_context_create(int device, const glqjit_context_options* opt, glqjit_context** out);
GLQJIT_API void glqjit_context_destroy(glqjit_context* ctx);
GLQJIT_API glqjit_status glqjit_linear_create(glqjit_context* ctx, const glqjit_linear_desc* desc,
                                              const glqjit_linear_weights* w, glqjit_linear** out);
/* x: [batch, in_features], y: [batch, out_features], row-major, device memory, activation
 * dtype, 16-byte aligned. stream: a CUstream (NULL for the legacy default stream). */
GLQJIT_API glqjit_status glqjit_linear_forward(glqjit_linear* lin, const void* x, void* y, int batch, void* stream);
GLQJIT_API void glqjit_linear_destroy(glqjit_linear* lin);

/* Linears that read the same input (q, k and v; gate and up), each with its own checkpoint
 * tensors, run as one forward whose outputs sit side by side in y. Where the linears share bpw
 * and bias (present or not), a forward of batch up to 4 is one kernel over all of them (where the
 * card's shared memory allows); otherwise it runs one linear at a time, each writing its columns of y. A group cannot be added to a glqjit_graph: capture the stream around
 * glqjit_linear_group_forward instead (it is legal inside stream capture).
 * count: 1..8 linears; descs[i] and weights[i] describe linear i (as for glqjit_linear_create),
 * and all descs share in_features, dtype, max_batch and flags (else GLQJIT_INVALID_ARGUMENT). */
typedef struct glqjit_linear_group glqjit_linear_group;
GLQJIT_API glqjit_status glqjit_linear_group_create(glqjit_context* ctx, int count, const glqjit_linear_desc* descs,
                                                    const glqjit_linear_weights* weights, glqjit_linear_group** out);
/* x: [batch, in_features]; y: [batch, sum of out_features], row-major, the outputs of linear 0
 * first, then linear 1's, ... in each row; device memory, activation dtype, 16-byte aligned.
 * Forwards of one group must not overlap in time (they share its buffers). */
GLQJIT_API glqjit_status glqjit_linear_group_forward(glqjit_linear_group* group, const void* x, void* y, int batch,
                                                     void* stream);
GLQJIT_API void glqjit_linear_group_destroy(glqjit_linear_group* group);
GLQJIT_API const char* glqjit_last_error(void);
/* The library's version, "MAJOR.MINOR.PATCH" (e.g. "0.1.0"): a static string, never NULL. */
GLQJIT_API const char* glqjit_version(void);

/* A graph of forwards run in sequence, whose input and output pointers can be changed after
 * instantiation without capturing again. Forwards of one graph use linears of one context. */
typedef struct glqjit_graph glqjit_graph;
GLQJIT_API glqjit_status glqjit_graph_create(glqjit_context* ctx, glqjit_graph** out);
GLQJIT_API glqjit_status glqjit_graph_add_forward(glqjit_graph* graph, glqjit_linear* lin, const void* x, void* y,
                                                  int batch, int* index_out);
GLQJIT_API glqjit_status glqjit_graph_instantiate(glqjit_graph* graph);
GLQJIT_API glqjit_status glqjit_graph_set_io(glqjit_graph* graph, int index, const void* x, void* y);
GLQJIT_API glqjit_status glqjit_graph_launch(glqjit_graph* graph, void* stream);
GLQJIT_API void glqjit_graph_destroy(glqjit_graph* graph);

#ifdef __cplusplus
}
#endif

#endif
