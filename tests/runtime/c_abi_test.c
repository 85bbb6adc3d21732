/* The C ABI (include/glqjit/glqjit.h) as a C program sees it: every error path answers with a
 * status and a message, never a crash. Compiled as C11 and linked to libglqjit.so only.
 *
 * Without a usable CUDA driver (CI) it checks the CPU-side paths: null and foreign handles,
 * null result pointers, NULL-tolerant destroys, GLQJIT_NO_DRIVER from context_create, and that
 * the message is per thread. With a GPU it also checks what needs device memory: bad
 * descriptors and weights at create, bad forward arguments, graph misuse, destroyed handles, and
 * failures injected into NVRTC, module loads and device allocations (GLQJIT_INJECT_FAULT).
 * Device memory comes from libcuda directly (dlopen), so nothing but the library is linked.
 *
 * Usage: c_abi_test [SCRATCH_DIR]   (kernel stores go there; default: $TMPDIR or /tmp)
 * Prints one line per check; exits 1 at the first failure. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "glqjit/glqjit.h"

static int checks_passed = 0;

static const char* status_name(glqjit_status s) {
  switch (s) {
    case GLQJIT_OK: return "GLQJIT_OK";
    case GLQJIT_INVALID_ARGUMENT: return "GLQJIT_INVALID_ARGUMENT";
    case GLQJIT_UNSUPPORTED_SHAPE: return "GLQJIT_UNSUPPORTED_SHAPE";
    case GLQJIT_UNSUPPORTED_ARCH: return "GLQJIT_UNSUPPORTED_ARCH";
    case GLQJIT_NO_DRIVER: return "GLQJIT_NO_DRIVER";
    case GLQJIT_CUDA_ERROR: return "GLQJIT_CUDA_ERROR";
    case GLQJIT_COMPILE_ERROR: return "GLQJIT_COMPILE_ERROR";
    case GLQJIT_CACHE_ERROR: return "GLQJIT_CACHE_ERROR";
    case GLQJIT_CAPTURE_IN_PROGRESS: return "GLQJIT_CAPTURE_IN_PROGRESS";
    case GLQJIT_NO_JIT: return "GLQJIT_NO_JIT";
    case GLQJIT_INTERNAL: return "GLQJIT_INTERNAL";
  }
  return "(unknown status)";
}

static void fail(int line, const char* what, const char* detail) {
  fprintf(stderr, "FAIL (c_abi_test.c:%d): %s\n  %s\n  glqjit_last_error(): \"%s\"\n", line, what, detail,
          glqjit_last_error());
  fflush(stdout);
  exit(1);
}

#define CHECK(cond, what)                 \
  do {                                    \
    if (!(cond)) fail(__LINE__, what, #cond); \
    ++checks_passed;                      \
    printf("ok   %s\n", what);            \
  } while (0)

/* The call returned `want`; on failure glqjit_last_error() is non-empty and holds every word of
 * `words` (NULL-terminated list, may be empty); on success it is empty. */
static void expect_status_at(int line, const char* what, glqjit_status got, glqjit_status want,
                             const char* const* words) {
  char detail[512];
  const char* message = glqjit_last_error();
  if (got != want) {
    snprintf(detail, sizeof detail, "returned %s, expected %s", status_name(got), status_name(want));
    fail(line, what, detail);
  }
  if (message == NULL) fail(line, what, "glqjit_last_error() returned NULL");
  if (want != GLQJIT_OK && message[0] == '\0') fail(line, what, "the status is an error but the message is empty");
  if (want == GLQJIT_OK && message[0] != '\0') fail(line, what, "success left a stale error message");
  if (strchr(message, '\n') != NULL && want != GLQJIT_COMPILE_ERROR) {
    fail(line, what, "the message spans several lines");
  }
  for (; words != NULL && *words != NULL; ++words) {
    if (strstr(message, *words) == NULL) {
      snprintf(detail, sizeof detail, "the message does not mention \"%s\"", *words);
      fail(line, what, detail);
    }
  }
  ++checks_passed;
  printf("ok   %s -> %s%s%s\n", what, status_name(got), message[0] ? ": " : "", message);
}

#define WORDS(...) ((const char* const[]){__VA_ARGS__, NULL})
#define EXPECT(what, call, want, words) expect_status_at(__LINE__, what, (call), want, words)

/* ---- the few Driver API calls this test makes itself ---- */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st* CUcontext;
typedef unsigned long long CUdeviceptr;

typedef struct {
  CUresult (*cuInit)(unsigned int);
  CUresult (*cuDeviceGetCount)(int*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)(void);
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*cuMemGetInfo)(size_t*, size_t*);
} Cuda;

/* Set by probe_driver when cuInit answers CUDA_ERROR_STUB_LIBRARY (34): the libcuda.so.1 found
 * is the toolkit's stub (lib64/stubs), which exports every function and runs none. */
enum { CUDA_ERROR_STUB_LIBRARY_VALUE = 34 };
static int driver_is_stub = 0;

/* 0: libcuda.so.1 does not load; 1: it loads but cuInit fails or sees no device;
 * 2: usable (cuda filled in). */
static int probe_driver(Cuda* cuda) {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) return 0;
  memset(cuda, 0, sizeof *cuda);
#define RESOLVE(field, symbol) *(void**)(&cuda->field) = dlsym(library, symbol)
  RESOLVE(cuInit, "cuInit");
  RESOLVE(cuDeviceGetCount, "cuDeviceGetCount");
  RESOLVE(cuDeviceGet, "cuDeviceGet");
  RESOLVE(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  RESOLVE(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  RESOLVE(cuCtxSetCurrent, "cuCtxSetCurrent");
  RESOLVE(cuCtxSynchronize, "cuCtxSynchronize");
  RESOLVE(cuMemAlloc, "cuMemAlloc_v2");
  RESOLVE(cuMemFree, "cuMemFree_v2");
  RESOLVE(cuMemsetD8, "cuMemsetD8_v2");
  RESOLVE(cuMemGetInfo, "cuMemGetInfo_v2");
#undef RESOLVE
  if (cuda->cuInit == NULL) return 1;
  const CUresult init = cuda->cuInit(0);
  if (init != 0) {
    driver_is_stub = init == CUDA_ERROR_STUB_LIBRARY_VALUE;
    return 1;
  }
  int count = 0;
  if (cuda->cuDeviceGetCount == NULL || cuda->cuDeviceGetCount(&count) != 0 || count < 1) return 1;
  if (!cuda->cuDeviceGet || !cuda->cuDevicePrimaryCtxRetain || !cuda->cuDevicePrimaryCtxRelease ||
      !cuda->cuCtxSetCurrent || !cuda->cuCtxSynchronize || !cuda->cuMemAlloc || !cuda->cuMemFree ||
      !cuda->cuMemsetD8 || !cuda->cuMemGetInfo) {
    return 1;
  }
  return 2;
}

/* Something the library never made, with room behind it so that a wrong dereference reads
 * harmless zeros rather than crashing before the test can say so. */
static struct {
  unsigned char bytes[256];
} foreign_object;

/* ---- the message is per thread ---- */
static char thread_message[512];

static void* fail_in_thread(void* unused) {
  (void)unused;
  glqjit_graph_launch(NULL, NULL);
  snprintf(thread_message, sizeof thread_message, "%s", glqjit_last_error());
  return NULL;
}

static void check_cpu_paths(int driver_state) {
  glqjit_context* const foreign_ctx = (glqjit_context*)(void*)&foreign_object;
  glqjit_linear* const foreign_lin = (glqjit_linear*)(void*)&foreign_object;
  glqjit_graph* const foreign_graph = (glqjit_graph*)(void*)&foreign_object;
  glqjit_linear_group* const foreign_group = (glqjit_linear_group*)(void*)&foreign_object;
  static char x_bytes[64], y_bytes[64];
  glqjit_linear_desc desc = {4096, 4096, 2, GLQJIT_FLOAT16, 1, 0};
  glqjit_linear_weights w;
  memset(&w, 0, sizeof w);
  glqjit_linear_desc descs[2] = {{4096, 4096, 2, GLQJIT_FLOAT16, 1, 0}, {4096, 1024, 2, GLQJIT_FLOAT16, 1, 0}};
  glqjit_linear_weights ws[2];
  memset(ws, 0, sizeof ws);

  CHECK(glqjit_last_error() != NULL, "glqjit_last_error() is never NULL");
  CHECK(glqjit_version() != NULL && strcmp(glqjit_version(), GLQJIT_TEST_PROJECT_VERSION) == 0,
        "glqjit_version() is the CMake project version " GLQJIT_TEST_PROJECT_VERSION);

  /* context_create */
  EXPECT("context_create with a null out", glqjit_context_create(0, NULL, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("out", "null"));
  if (driver_state != 2) {
    glqjit_context* ctx = (glqjit_context*)(void*)&foreign_object;
    if (driver_state == 0) {
      EXPECT("context_create without a CUDA driver", glqjit_context_create(0, NULL, &ctx), GLQJIT_NO_DRIVER,
             WORDS("no CUDA driver", "libcuda.so.1"));
    } else if (driver_is_stub) {
      /* The message says it is the stub, not a driver, and how to get rid of it. */
      EXPECT("context_create with the toolkit's stub libcuda", glqjit_context_create(0, NULL, &ctx),
             GLQJIT_NO_DRIVER, WORDS("no CUDA driver", "stub", "LD_LIBRARY_PATH"));
    } else {
      EXPECT("context_create with a driver that does not start", glqjit_context_create(0, NULL, &ctx),
             GLQJIT_NO_DRIVER, WORDS("CUDA driver"));
    }
    CHECK(ctx == NULL, "a failed context_create sets *out to NULL");
    glqjit_context_options options = {"/proc/self/unusable/x.db", 1, 1};
    ctx = (glqjit_context*)(void*)&foreign_object;
    EXPECT("context_create with options, no driver", glqjit_context_create(0, &options, &ctx), GLQJIT_NO_DRIVER,
           WORDS("CUDA driver"));
    CHECK(ctx == NULL, "*out is NULL again");
    EXPECT("context_create for device -1, no driver", glqjit_context_create(-1, NULL, &ctx), GLQJIT_NO_DRIVER,
           WORDS("CUDA driver"));
  }

  /* linear_create */
  glqjit_linear* lin = foreign_lin;
  EXPECT("linear_create with a null context", glqjit_linear_create(NULL, &desc, &w, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("ctx", "null"));
  CHECK(lin == NULL, "a failed linear_create sets *out to NULL");
  EXPECT("linear_create with a foreign context", glqjit_linear_create(foreign_ctx, &desc, &w, &lin),
         GLQJIT_INVALID_ARGUMENT, WORDS("ctx", "not a live glqjit object"));
  EXPECT("linear_create with a null out", glqjit_linear_create(foreign_ctx, &desc, &w, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("out"));
  EXPECT("linear_create with a foreign context and a null desc", glqjit_linear_create(foreign_ctx, NULL, &w, &lin),
         GLQJIT_INVALID_ARGUMENT, WORDS("ctx"));
  EXPECT("linear_create with everything null", glqjit_linear_create(NULL, NULL, NULL, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("null"));

  /* linear_forward */
  EXPECT("linear_forward on a null linear", glqjit_linear_forward(NULL, x_bytes, y_bytes, 1, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("lin", "null"));
  EXPECT("linear_forward on a foreign linear", glqjit_linear_forward(foreign_lin, x_bytes, y_bytes, 1, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("lin", "not a live glqjit object"));
  EXPECT("linear_forward on a foreign linear, batch 0", glqjit_linear_forward(foreign_lin, NULL, NULL, 0, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("not a live glqjit object"));

  /* linear groups: the result pointer, then the context, then the rest (as for linear_create),
   * so without a live context count and descs are not reached yet */
  glqjit_linear_group* group = foreign_group;
  EXPECT("linear_group_create with a null out", glqjit_linear_group_create(foreign_ctx, 2, descs, ws, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("out", "null"));
  EXPECT("linear_group_create with a null context", glqjit_linear_group_create(NULL, 2, descs, ws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("ctx", "null"));
  CHECK(group == NULL, "a failed linear_group_create sets *out to NULL");
  group = foreign_group;
  EXPECT("linear_group_create with a foreign context", glqjit_linear_group_create(foreign_ctx, 2, descs, ws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("ctx", "not a live glqjit object"));
  CHECK(group == NULL, "*out is NULL again");
  EXPECT("linear_group_create with count 0, no live context",
         glqjit_linear_group_create(foreign_ctx, 0, descs, ws, &group), GLQJIT_INVALID_ARGUMENT, WORDS("ctx"));
  EXPECT("linear_group_create with count 9, no live context",
         glqjit_linear_group_create(foreign_ctx, 9, descs, ws, &group), GLQJIT_INVALID_ARGUMENT, WORDS("ctx"));
  EXPECT("linear_group_create with count -1 and a null context",
         glqjit_linear_group_create(NULL, -1, descs, ws, &group), GLQJIT_INVALID_ARGUMENT, WORDS("ctx", "null"));
  EXPECT("linear_group_create with null descs, no live context",
         glqjit_linear_group_create(foreign_ctx, 2, NULL, ws, &group), GLQJIT_INVALID_ARGUMENT, WORDS("ctx"));
  EXPECT("linear_group_create with null weights, no live context",
         glqjit_linear_group_create(foreign_ctx, 2, descs, NULL, &group), GLQJIT_INVALID_ARGUMENT, WORDS("ctx"));
  EXPECT("linear_group_create with everything null", glqjit_linear_group_create(NULL, 0, NULL, NULL, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("out", "null"));
  EXPECT("linear_group_forward on a null group", glqjit_linear_group_forward(NULL, x_bytes, y_bytes, 1, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("group", "null"));
  EXPECT("linear_group_forward on a foreign group",
         glqjit_linear_group_forward(foreign_group, x_bytes, y_bytes, 1, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("group", "not a live glqjit object"));
  EXPECT("linear_group_forward on a foreign group, batch 0",
         glqjit_linear_group_forward(foreign_group, NULL, NULL, 0, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("not a live glqjit object"));

  /* graphs */
  glqjit_graph* graph = foreign_graph;
  int index = 12345;
  EXPECT("graph_create with a null context", glqjit_graph_create(NULL, &graph), GLQJIT_INVALID_ARGUMENT,
         WORDS("ctx", "null"));
  CHECK(graph == NULL, "a failed graph_create sets *out to NULL");
  EXPECT("graph_create with a foreign context", glqjit_graph_create(foreign_ctx, &graph), GLQJIT_INVALID_ARGUMENT,
         WORDS("not a live glqjit object"));
  EXPECT("graph_create with a null out", glqjit_graph_create(foreign_ctx, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("out"));
  EXPECT("graph_add_forward on a null graph", glqjit_graph_add_forward(NULL, foreign_lin, x_bytes, y_bytes, 1, &index),
         GLQJIT_INVALID_ARGUMENT, WORDS("graph", "null"));
  EXPECT("graph_add_forward on a foreign graph",
         glqjit_graph_add_forward(foreign_graph, foreign_lin, x_bytes, y_bytes, 1, &index), GLQJIT_INVALID_ARGUMENT,
         WORDS("graph", "not a live glqjit object"));
  CHECK(index == 12345, "a failed graph_add_forward leaves *index_out alone");
  EXPECT("graph_instantiate on a null graph", glqjit_graph_instantiate(NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("graph", "null"));
  EXPECT("graph_instantiate on a foreign graph", glqjit_graph_instantiate(foreign_graph), GLQJIT_INVALID_ARGUMENT,
         WORDS("not a live glqjit object"));
  EXPECT("graph_set_io on a null graph", glqjit_graph_set_io(NULL, 0, x_bytes, y_bytes), GLQJIT_INVALID_ARGUMENT,
         WORDS("graph", "null"));
  EXPECT("graph_set_io on a foreign graph", glqjit_graph_set_io(foreign_graph, 0, x_bytes, y_bytes),
         GLQJIT_INVALID_ARGUMENT, WORDS("not a live glqjit object"));
  EXPECT("graph_launch on a null graph", glqjit_graph_launch(NULL, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("graph", "null"));
  EXPECT("graph_launch on a foreign graph", glqjit_graph_launch(foreign_graph, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("not a live glqjit object"));

  /* destroys take NULL and ignore what the library did not make */
  glqjit_context_destroy(NULL);
  glqjit_linear_destroy(NULL);
  glqjit_linear_group_destroy(NULL);
  glqjit_graph_destroy(NULL);
  CHECK(1, "the destroy functions accept NULL");
  memset(&foreign_object, 0x5a, sizeof foreign_object);
  glqjit_context_destroy(foreign_ctx);
  glqjit_linear_destroy(foreign_lin);
  glqjit_linear_group_destroy(foreign_group);
  glqjit_graph_destroy(foreign_graph);
  int untouched = 1;
  for (size_t i = 0; i < sizeof foreign_object.bytes; ++i) untouched &= foreign_object.bytes[i] == 0x5a;
  CHECK(untouched, "the destroy functions ignore (and do not write) a foreign pointer");
  memset(&foreign_object, 0, sizeof foreign_object);

  /* the message belongs to the calling thread */
  EXPECT("linear_forward on a null linear (main thread)", glqjit_linear_forward(NULL, NULL, NULL, 1, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("lin"));
  char main_message[512];
  snprintf(main_message, sizeof main_message, "%s", glqjit_last_error());
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, fail_in_thread, NULL) == 0, "start a second thread");
  CHECK(pthread_join(thread, NULL) == 0, "join it");
  CHECK(strstr(thread_message, "graph") != NULL, "the second thread saw its own message");
  CHECK(strcmp(glqjit_last_error(), main_message) == 0, "the main thread's message is unchanged");
}

/* ---- with a GPU ---- */

static size_t free_device_bytes(Cuda* cuda) {
  size_t free_bytes = 0, total_bytes = 0;
  CHECK(cuda->cuMemGetInfo(&free_bytes, &total_bytes) == 0, "cuMemGetInfo");
  return free_bytes;
}

/* One create made to fail `rounds` times at one injected point (GLQJIT_INJECT_FAULT, whose
 * value is set once, so that its count runs on across the rounds): each gives `want` naming
 * `word`, and no linear. */
static void fail_create_repeatedly(glqjit_context* ctx, const glqjit_linear_desc* desc,
                                   const glqjit_linear_weights* w, const char* inject, glqjit_status want,
                                   const char* word, int rounds) {
  char what[160];
  snprintf(what, sizeof what, "linear_create at %d bpw with GLQJIT_INJECT_FAULT=%s (%d times)", desc->bpw, inject,
           rounds);
  CHECK(setenv("GLQJIT_INJECT_FAULT", inject, 1) == 0, "setenv GLQJIT_INJECT_FAULT");
  for (int round = 0; round < rounds; ++round) {
    glqjit_linear* lin = (glqjit_linear*)(void*)&foreign_object;
    const glqjit_status got = glqjit_linear_create(ctx, desc, w, &lin);
    if (round + 1 < rounds && got == want && lin == NULL) continue;
    EXPECT(what, got, want, WORDS(word));
    CHECK(lin == NULL, "no linear after an injected failure");
  }
  CHECK(unsetenv("GLQJIT_INJECT_FAULT") == 0, "unsetenv GLQJIT_INJECT_FAULT");
}

/* Every injected failure of a create gives its documented status and message, frees what the
 * create had taken (device memory is back where it was after many rounds), and the library goes
 * on: the same layer and a group are created and run afterwards. Bpw 4 and 5 are kernels no
 * other check compiles, so the NVRTC point meets a real compile. */
static void check_injected_failures(Cuda* cuda, glqjit_context* ctx, const glqjit_linear_desc* good,
                                    const glqjit_linear_weights* w, char* x, char* y) {
  glqjit_linear_desc fresh = *good, e81b = *good;
  fresh.bpw = 5;
  e81b.bpw = 3; /* an E8P stage and an E81B stage: the repack allocates after the workspace */
  fail_create_repeatedly(ctx, &fresh, w, "nvrtc_compile", GLQJIT_COMPILE_ERROR, "NVRTC", 1);
  fail_create_repeatedly(ctx, &fresh, w, "module_load", GLQJIT_CUDA_ERROR, "loading the kernels", 1);
  fail_create_repeatedly(ctx, &e81b, w, "device_alloc@2", GLQJIT_CUDA_ERROR, "E81B", 1);
  fail_create_repeatedly(ctx, &e81b, w, "module_load", GLQJIT_CUDA_ERROR, "CUDA_ERROR_INVALID_IMAGE", 1);

  const size_t free_before = free_device_bytes(cuda);
  fail_create_repeatedly(ctx, &fresh, w, "module_load", GLQJIT_CUDA_ERROR, "loading the kernels", 100);
  fail_create_repeatedly(ctx, &e81b, w, "device_alloc", GLQJIT_CUDA_ERROR, "workspace", 100);
  fail_create_repeatedly(ctx, &e81b, w, "device_alloc@2", GLQJIT_CUDA_ERROR, "out of memory", 300);
  fail_create_repeatedly(ctx, &e81b, w, "module_load", GLQJIT_CUDA_ERROR, "loading the kernels", 300);
  const size_t free_after = free_device_bytes(cuda);
  char detail[160];
  snprintf(detail, sizeof detail, "device memory is as it was after 800 failed creates (%zu bytes free, then %zu)",
           free_before, free_after);
  CHECK(free_after == free_before, detail);

  /* A group whose second linear cannot be made fails whole (the first is freed with it). */
  glqjit_linear_desc pair[2] = {*good, fresh};
  glqjit_linear_weights pair_weights[2] = {*w, *w};
  glqjit_linear_group* group = (glqjit_linear_group*)(void*)&foreign_object;
  /* The first linear's modules are the live linear's, so only the second one loads any. */
  CHECK(setenv("GLQJIT_INJECT_FAULT", "module_load", 1) == 0, "setenv GLQJIT_INJECT_FAULT");
  EXPECT("linear_group_create whose second linear's kernels fail to load",
         glqjit_linear_group_create(ctx, 2, pair, pair_weights, &group), GLQJIT_CUDA_ERROR,
         WORDS("loading the kernels"));
  CHECK(group == NULL, "no group after an injected failure");
  CHECK(unsetenv("GLQJIT_INJECT_FAULT") == 0, "unsetenv GLQJIT_INJECT_FAULT");

  glqjit_linear* lin = NULL;
  EXPECT("linear_create at 5 bpw after the injected failures", glqjit_linear_create(ctx, &fresh, w, &lin), GLQJIT_OK,
         NULL);
  EXPECT("forward of it", glqjit_linear_forward(lin, x, y, 2, NULL), GLQJIT_OK, NULL);
  CHECK(cuda->cuCtxSynchronize() == 0, "the forward ran");
  glqjit_linear_destroy(lin);
  EXPECT("linear_group_create after the injected failures",
         glqjit_linear_group_create(ctx, 2, pair, pair_weights, &group), GLQJIT_OK, NULL);
  EXPECT("forward of the group", glqjit_linear_group_forward(group, x, y, 1, NULL), GLQJIT_OK, NULL);
  CHECK(cuda->cuCtxSynchronize() == 0, "the group's forward ran");
  glqjit_linear_group_destroy(group);
}

static void check_gpu_paths(Cuda* cuda, const char* scratch) {
  CUdevice device = 0;
  CUcontext primary = NULL;
  CHECK(cuda->cuDeviceGet(&device, 0) == 0, "cuDeviceGet(0)");
  CHECK(cuda->cuDevicePrimaryCtxRetain(&primary, device) == 0, "retain the primary context");
  CHECK(cuda->cuCtxSetCurrent(primary) == 0, "make it current");

  /* A 256 x 256 layer: n_pad = m_pad = 256; E8P stage (256/16)*(256/64)*32 words = 16 KiB, an
   * E81B stage 256*4 words = 8 KiB; SU and SV 512 bytes each. All zero: legal codes. */
  enum { IN = 256, OUT = 256, MAX_BATCH = 4 };
  const size_t stage_bytes = 16384, sign_bytes = 512, act_bytes = (size_t)MAX_BATCH * IN * 2;
  const size_t total = 4 * stage_bytes + 2 * sign_bytes + 4 * act_bytes + 4096;
  CUdeviceptr base = 0;
  CHECK(cuda->cuMemAlloc(&base, total) == 0, "cuMemAlloc");
  CHECK(cuda->cuMemsetD8(base, 0, total) == 0, "zero it");
  CUdeviceptr at = base;
  glqjit_linear_weights w;
  memset(&w, 0, sizeof w);
  for (int s = 0; s < 4; ++s, at += stage_bytes) w.stages[s] = (const void*)(uintptr_t)at;
  w.su = (const void*)(uintptr_t)at;
  at += sign_bytes;
  w.sv = (const void*)(uintptr_t)at;
  at += sign_bytes;
  char* x = (char*)(uintptr_t)at;
  char* y = x + act_bytes;
  char* x2 = y + act_bytes;
  char* y2 = x2 + act_bytes;
  w.wscale = 1.0f;
  w.inv_resid_scale[0] = 1.0f / 3.45f;

  char cache_path[1024], cold_path[1024];
  snprintf(cache_path, sizeof cache_path, "%s/c_abi_test-%d.db", scratch, (int)getpid());
  snprintf(cold_path, sizeof cold_path, "%s/c_abi_test-cold-%d.db", scratch, (int)getpid());
  glqjit_context_options options = {cache_path, 0, 0};
  glqjit_context* ctx = NULL;
  EXPECT("context_create on device 0", glqjit_context_create(0, &options, &ctx), GLQJIT_OK, NULL);
  CHECK(ctx != NULL, "it returned a context");
  glqjit_context* bad = (glqjit_context*)(void*)&foreign_object;
  EXPECT("context_create on device -1", glqjit_context_create(-1, &options, &bad), GLQJIT_INVALID_ARGUMENT,
         WORDS("device -1"));
  CHECK(bad == NULL, "*out is NULL after the failure");
  EXPECT("context_create on device 4096", glqjit_context_create(4096, &options, &bad), GLQJIT_INVALID_ARGUMENT,
         WORDS("device 4096"));

  const glqjit_linear_desc good = {IN, OUT, 2, GLQJIT_FLOAT16, MAX_BATCH, 0};
  glqjit_linear_desc desc;
  glqjit_linear_weights w2;
  glqjit_linear* lin = NULL;

  desc = good;
  desc.bpw = 9;
  EXPECT("linear_create with bpw 9", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_UNSUPPORTED_SHAPE,
         WORDS("bpw 9"));
  CHECK(lin == NULL, "no linear after a failed create");
  desc = good;
  desc.bpw = 1;
  EXPECT("linear_create with bpw 1", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_UNSUPPORTED_SHAPE,
         WORDS("bpw 1"));
  desc = good;
  desc.in_features = 0;
  EXPECT("linear_create with 0 in_features", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_UNSUPPORTED_SHAPE,
         WORDS("in_features"));
  desc = good;
  desc.out_features = -16;
  EXPECT("linear_create with -16 out_features", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_UNSUPPORTED_SHAPE,
         WORDS("out_features"));
  desc = good;
  desc.dtype = (glqjit_dtype)7;
  EXPECT("linear_create with dtype 7", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("dtype 7"));
  desc = good;
  desc.flags = 1u << 20;
  EXPECT("linear_create with an unknown flag", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("flags"));
  desc = good;
  desc.max_batch = 0;
  EXPECT("linear_create with max_batch 0", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("max_batch 0"));
  desc.max_batch = -1;
  EXPECT("linear_create with max_batch -1", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("max_batch -1"));
  desc.max_batch = 1 << 20;
  EXPECT("linear_create with max_batch 2^20", glqjit_linear_create(ctx, &desc, &w, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("max_batch"));
  EXPECT("linear_create with null weights", glqjit_linear_create(ctx, &good, NULL, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("weights"));
  EXPECT("linear_create with a null desc", glqjit_linear_create(ctx, NULL, &w, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("desc"));
  w2 = w;
  w2.stages[0] = NULL;
  EXPECT("linear_create with a null stage tensor", glqjit_linear_create(ctx, &good, &w2, &lin),
         GLQJIT_INVALID_ARGUMENT, WORDS("stages[0]"));
  w2 = w;
  w2.su = NULL;
  EXPECT("linear_create with a null SU", glqjit_linear_create(ctx, &good, &w2, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("SU"));
  w2 = w;
  w2.sv = (const char*)w.sv + 2;
  EXPECT("linear_create with a misaligned SV", glqjit_linear_create(ctx, &good, &w2, &lin), GLQJIT_INVALID_ARGUMENT,
         WORDS("SV", "aligned"));
  desc = good;
  desc.bpw = 3;
  w2 = w;
  w2.stages[1] = NULL;
  EXPECT("linear_create at 3 bpw without the E81B stage", glqjit_linear_create(ctx, &desc, &w2, &lin),
         GLQJIT_INVALID_ARGUMENT, WORDS("stages[1]"));

  /* Group arguments: checked before anything is planned. */
  glqjit_linear_desc gdescs[2] = {good, good};
  glqjit_linear_weights gws[2] = {w, w};
  glqjit_linear_group* group = (glqjit_linear_group*)(void*)&foreign_object;
  EXPECT("linear_group_create with count 0", glqjit_linear_group_create(ctx, 0, gdescs, gws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("count 0", "1..8"));
  CHECK(group == NULL, "no group after a failed create");
  EXPECT("linear_group_create with count 9", glqjit_linear_group_create(ctx, 9, gdescs, gws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("count 9", "1..8"));
  EXPECT("linear_group_create with null descs", glqjit_linear_group_create(ctx, 2, NULL, gws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("descs", "null"));
  EXPECT("linear_group_create with null weights", glqjit_linear_group_create(ctx, 2, gdescs, NULL, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("weights", "null"));
  gdescs[1].in_features = 2 * IN;
  EXPECT("linear_group_create with another in_features", glqjit_linear_group_create(ctx, 2, gdescs, gws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("descs[1]", "in_features"));
  gdescs[1] = good;
  gdescs[1].dtype = GLQJIT_BFLOAT16;
  EXPECT("linear_group_create with another dtype", glqjit_linear_group_create(ctx, 2, gdescs, gws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("descs[1]", "dtype"));
  gdescs[1] = good;
  gdescs[1].max_batch = 2 * MAX_BATCH;
  EXPECT("linear_group_create with another max_batch", glqjit_linear_group_create(ctx, 2, gdescs, gws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("descs[1]", "max_batch"));
  gdescs[1] = good;
  gdescs[1].flags = GLQJIT_LINEAR_LAZY_BUCKETS;
  EXPECT("linear_group_create with other flags", glqjit_linear_group_create(ctx, 2, gdescs, gws, &group),
         GLQJIT_INVALID_ARGUMENT, WORDS("descs[1]", "flags"));
  gdescs[1] = good;
  gdescs[1].bpw = 9;
  EXPECT("linear_group_create with bpw 9 in linear 1", glqjit_linear_group_create(ctx, 2, gdescs, gws, &group),
         GLQJIT_UNSUPPORTED_SHAPE, WORDS("descs[1]", "bpw 9"));
  CHECK(group == NULL, "still no group");

  /* No JIT with a cold store. */
  glqjit_context_options cold = {cold_path, 1, 0};
  glqjit_context* cold_ctx = NULL;
  EXPECT("context_create with no_jit", glqjit_context_create(0, &cold, &cold_ctx), GLQJIT_OK, NULL);
  EXPECT("linear_create with no_jit and a cold store", glqjit_linear_create(cold_ctx, &good, &w, &lin), GLQJIT_NO_JIT,
         WORDS("glq-tune"));
  glqjit_context_destroy(cold_ctx);

  /* A linear that works, then every bad forward. */
  EXPECT("linear_create 256x256 at 2 bpw", glqjit_linear_create(ctx, &good, &w, &lin), GLQJIT_OK, NULL);
  CHECK(lin != NULL, "it returned a linear");
  EXPECT("forward with batch 3", glqjit_linear_forward(lin, x, y, 3, NULL), GLQJIT_OK, NULL);
  CHECK(cuda->cuCtxSynchronize() == 0, "the forward ran");
  EXPECT("forward with batch 0", glqjit_linear_forward(lin, x, y, 0, NULL), GLQJIT_INVALID_ARGUMENT, WORDS("batch 0"));
  EXPECT("forward with batch -1", glqjit_linear_forward(lin, x, y, -1, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("batch -1"));
  EXPECT("forward with batch above max_batch", glqjit_linear_forward(lin, x, y, MAX_BATCH + 1, NULL),
         GLQJIT_INVALID_ARGUMENT, WORDS("batch 5", "max_batch"));
  EXPECT("forward with a null x", glqjit_linear_forward(lin, NULL, y, 1, NULL), GLQJIT_INVALID_ARGUMENT, WORDS("null"));
  EXPECT("forward with a null y", glqjit_linear_forward(lin, x, NULL, 1, NULL), GLQJIT_INVALID_ARGUMENT, WORDS("null"));
  EXPECT("forward with a misaligned x", glqjit_linear_forward(lin, x + 2, y, 1, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("aligned"));
  EXPECT("forward with a misaligned y", glqjit_linear_forward(lin, x, y + 8, 1, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("aligned"));
  EXPECT("forward with batch 1 after the errors", glqjit_linear_forward(lin, x, y, 1, NULL), GLQJIT_OK, NULL);

  /* Graph misuse. */
  glqjit_graph* graph = NULL;
  int index = -1;
  EXPECT("graph_create", glqjit_graph_create(ctx, &graph), GLQJIT_OK, NULL);
  EXPECT("graph_launch before instantiate", glqjit_graph_launch(graph, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("instantiate"));
  EXPECT("graph_add_forward with batch 0", glqjit_graph_add_forward(graph, lin, x, y, 0, &index),
         GLQJIT_INVALID_ARGUMENT, WORDS("batch 0"));
  EXPECT("graph_add_forward with a foreign linear",
         glqjit_graph_add_forward(graph, (glqjit_linear*)(void*)&foreign_object, x, y, 1, &index),
         GLQJIT_INVALID_ARGUMENT, WORDS("lin", "not a live glqjit object"));
  EXPECT("graph_add_forward", glqjit_graph_add_forward(graph, lin, x, y, 2, &index), GLQJIT_OK, NULL);
  CHECK(index == 0, "the first forward has index 0");
  EXPECT("graph_set_io before instantiate", glqjit_graph_set_io(graph, 0, x2, y2), GLQJIT_INVALID_ARGUMENT,
         WORDS("instantiate"));
  EXPECT("graph_instantiate", glqjit_graph_instantiate(graph), GLQJIT_OK, NULL);
  EXPECT("graph_add_forward after instantiate", glqjit_graph_add_forward(graph, lin, x, y, 1, &index),
         GLQJIT_INVALID_ARGUMENT, WORDS("instantiate"));
  EXPECT("graph_set_io on forward 1 of 1", glqjit_graph_set_io(graph, 1, x2, y2), GLQJIT_INVALID_ARGUMENT,
         WORDS("index 1"));
  EXPECT("graph_set_io on forward -1", glqjit_graph_set_io(graph, -1, x2, y2), GLQJIT_INVALID_ARGUMENT,
         WORDS("index -1"));
  EXPECT("graph_set_io with a misaligned x", glqjit_graph_set_io(graph, 0, x2 + 2, y2), GLQJIT_INVALID_ARGUMENT,
         WORDS("aligned"));
  EXPECT("graph_set_io", glqjit_graph_set_io(graph, 0, x2, y2), GLQJIT_OK, NULL);
  EXPECT("graph_launch", glqjit_graph_launch(graph, NULL), GLQJIT_OK, NULL);
  CHECK(cuda->cuCtxSynchronize() == 0, "the graph ran");
  glqjit_graph_destroy(graph);
  EXPECT("graph_launch on a destroyed graph", glqjit_graph_launch(graph, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("not a live glqjit object"));

  check_injected_failures(cuda, ctx, &good, &w, x, y);

  /* Destroyed handles. */
  glqjit_linear_destroy(lin);
  EXPECT("forward on a destroyed linear", glqjit_linear_forward(lin, x, y, 1, NULL), GLQJIT_INVALID_ARGUMENT,
         WORDS("not a live glqjit object"));
  glqjit_linear_destroy(lin); /* twice: ignored */
  glqjit_context_destroy(ctx);
  glqjit_linear* late = NULL;
  EXPECT("linear_create on a destroyed context", glqjit_linear_create(ctx, &good, &w, &late), GLQJIT_INVALID_ARGUMENT,
         WORDS("ctx", "not a live glqjit object"));
  EXPECT("graph_create on a destroyed context", glqjit_graph_create(ctx, &graph), GLQJIT_INVALID_ARGUMENT,
         WORDS("not a live glqjit object"));
  glqjit_context_destroy(ctx); /* twice: ignored */
  CHECK(1, "destroying twice is harmless");

  CHECK(cuda->cuMemFree(base) == 0, "cuMemFree");
  cuda->cuDevicePrimaryCtxRelease(device);
  unlink(cache_path);
  unlink(cold_path);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* tmp = getenv("TMPDIR");
  const char* scratch = argc > 1 ? argv[1] : (tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
  Cuda cuda;
  const int driver_state = probe_driver(&cuda);
  printf("driver: %s\n", driver_state == 0   ? "libcuda.so.1 does not load (CPU-side checks only)"
                         : driver_state == 1 && driver_is_stub
                             ? "libcuda.so.1 loads but does not start: it is the toolkit's stub (CPU-side checks only)"
                         : driver_state == 1 ? "libcuda.so.1 loads but does not start (CPU-side checks only)"
                                             : "usable: CPU-side and GPU-side checks");
  check_cpu_paths(driver_state);
  if (driver_state == 2) check_gpu_paths(&cuda, scratch);
  printf("c_abi_test: all %d checks passed\n", checks_passed);
  return 0;
}
