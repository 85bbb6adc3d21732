/* The smallest C program over the installed library: prints glqjit's version, then opens a
 * context on GPU 0. Without a GPU (or driver) that is GLQJIT_NO_DRIVER with a message saying so,
 * which is a clean outcome too: it exits 0 either way and non-zero on any other failure. */
#include <stdio.h>

#include <glqjit/glqjit.h>

int main(void) {
  printf("glqjit %s\n", glqjit_version());
  glqjit_context* ctx = NULL;
  const glqjit_status status = glqjit_context_create(0, NULL, &ctx);
  if (status == GLQJIT_NO_DRIVER) {
    printf("glqjit_context_create: GLQJIT_NO_DRIVER: %s\n", glqjit_last_error());
    return 0;
  }
  if (status != GLQJIT_OK) {
    fprintf(stderr, "glqjit_context_create failed (status %d): %s\n", (int)status, glqjit_last_error());
    return 1;
  }
  printf("context on GPU 0\n");
  glqjit_context_destroy(ctx);
  return 0;
}
