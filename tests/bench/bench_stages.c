/* bench_stages.c - the CPU one event costs in each library stage intake runs it
 * through, on one thread with nothing else in the way: parse (dub_json_parse, i.e.
 * Jansson), envelope and data validation (libs/schema), sealing the reporter block
 * (libs/crypto), and serialising the event for Kafka (dub_ce_encode). Their sum bounds
 * what one core can accept before any HTTP, Redis or Kafka work; tests/bench/intake.sh
 * prints it beside the measured rates.
 *
 * Usage: bench_stages EVENT_FILE SCHEMA_DIR [ITERATIONS]
 * EVENT_FILE holds one duban.problem.reported event (JSON, not reporter-less). Prints one
 * line per stage: 'STAGE name us_per_event=… events_per_core_s=…', then 'STAGE total …'.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "json/json.h"
#include "kafka/cloudevent.h"
#include "schema/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STAGES 5

static double cpu_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  struct dub_buf b = DUB_BUF_INIT;
  char chunk[4096];
  size_t got;
  if(!f)
    return NULL;
  while((got = fread(chunk, 1, sizeof chunk, f)) > 0)
    dub_buf_append(&b, chunk, got);
  fclose(f);
  *len = b.len;
  return dub_buf_detach(&b);
}

static void fail(const char *what, char *why)
{
  fprintf(stderr, "bench_stages: %s: %s\n", what, why ? why : "failed");
  free(why);
  exit(1);
}

static struct dub_schema *load(const char *dir, const char *name)
{
  struct dub_schema *schema = NULL;
  char *why = NULL;
  char *path = dub_xasprintf("%s/%s", dir, name);
  if(dub_schema_load_file(path, &schema, &why))
    fail(path, why);
  free(path);
  return schema;
}

int main(int argc, char **argv)
{
  if(argc < 3) {
    fprintf(stderr, "usage: bench_stages EVENT_FILE SCHEMA_DIR [ITERATIONS]\n");
    return 2;
  }
  long iterations = argc > 3 ? strtol(argv[3], NULL, 10) : 20000;
  size_t len = 0;
  char *text = slurp(argv[1], &len), *why = NULL;
  if(!text)
    fail(argv[1], dub_xstrdup("cannot read"));
  struct dub_schema *envelope = load(argv[2], "cloudevent.json");
  struct dub_schema *reported = load(argv[2], "events/duban.problem.reported.json");
  struct dub_crypto_keyring *ring = NULL;
  if(dub_crypto_keyring_new(&ring) ||
     dub_crypto_keyring_add_spec(
         ring, "b=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
         &why))
    fail("keyring", why);
  json_t *event = NULL;
  if(dub_json_parse(text, len, &event, &why))
    fail("event", why);
  char *reporter =
      dub_json_dump(json_object_get(json_object_get(event, "data"), "reporter"));

  const char *names[STAGES] = {"parse", "validate_envelope", "validate_data",
                               "seal_reporter", "encode"};
  double us[STAGES] = {0};
  for(long i = 0; i < iterations; i++) {
    double t0 = cpu_us();
    json_t *parsed = NULL;
    if(dub_json_parse(text, len, &parsed, &why))
      fail("parse", why);
    double t1 = cpu_us();
    if(dub_schema_validate(envelope, parsed, NULL))
      fail("envelope", NULL);
    double t2 = cpu_us();
    if(dub_schema_validate(reported, json_object_get(parsed, "data"), NULL))
      fail("data", NULL);
    double t3 = cpu_us();
    char *token = NULL;
    if(dub_crypto_seal(ring, reporter, strlen(reporter), "DB01", &token))
      fail("seal", NULL);
    free(token);
    double t4 = cpu_us();
    char *out = NULL;
    size_t out_len = 0;
    if(dub_ce_encode(parsed, &out, &out_len, &why))
      fail("encode", why);
    free(out);
    json_decref(parsed);
    double t5 = cpu_us();
    us[0] += t1 - t0;
    us[1] += t2 - t1;
    us[2] += t3 - t2;
    us[3] += t4 - t3;
    us[4] += t5 - t4;
  }
  double total = 0;
  for(int s = 0; s < STAGES; s++) {
    double per = us[s] / (double)iterations;
    total += per;
    printf("STAGE %s us_per_event=%.2f events_per_core_s=%.0f\n", names[s], per,
           1e6 / per);
  }
  printf("STAGE total us_per_event=%.2f events_per_core_s=%.0f bytes=%zu\n", total,
         1e6 / total, len);
  free(reporter);
  json_decref(event);
  dub_crypto_keyring_free(ring);
  dub_schema_free(reported);
  dub_schema_free(envelope);
  free(text);
  return 0;
}
