/* helpers.h - building models and facts from short JSON texts in the assignment tests. */
#ifndef TEST_ASSIGNMENT_HELPERS_H
#define TEST_ASSIGNMENT_HELPERS_H

#include "rules.h"

#include <stdlib.h>
#include <string.h>

/* Parses 'text' with ' written for " (the tests' JSON is easier to read so). */
static inline json_t *jq(const char *text)
{
  char *copy = strdup(text);
  for(char *p = copy; *p; p++)
    if(*p == '\'')
      *p = '"';
  json_error_t err;
  json_t *doc = json_loads(copy, 0, &err);
  if(!doc)
    fprintf(stderr, "bad test JSON at %d: %s\n%s\n", err.position, err.text, copy);
  free(copy);
  return doc;
}

/* Compiles the two texts; the model must build. */
static inline struct assignment_model *model_of(const char *rules, const char *directory)
{
  json_t *r = jq(rules), *d = jq(directory);
  struct assignment_model *m = NULL;
  char *why = NULL;
  if(assignment_model_new(r, d, &m, &why)) {
    fprintf(stderr, "model refused: %s\n", why);
    free(why);
  }
  json_decref(r);
  json_decref(d);
  return m;
}

/* The officer index of 'id' in 'm', or -1 for NULL. */
static inline int officer(const struct assignment_model *m, const char *id)
{
  return id ? assignment_model_officer(m, id) : -1;
}

#endif
