/* load.c - reads the calendar/<YYYY>.json files of a configuration directory. */
#include "calendar/calendar.h"

#include "core/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void set_why(char **why, char *msg)
{
  if(why)
    *why = msg;
  else
    free(msg);
}

/* True for exactly four digits followed by ".json"; gives the year. */
static bool year_file(const char *name, int *year)
{
  int y = 0;
  for(int i = 0; i < 4; i++) {
    if(name[i] < '0' || name[i] > '9')
      return false;
    y = y * 10 + (name[i] - '0');
  }
  if(strcmp(name + 4, ".json"))
    return false;
  *year = y;
  return true;
}

/* Loads one file and checks that its "year" matches the name. */
static enum dub_err load_file(const char *dir, const char *name, int year, json_t **doc,
                              char **why)
{
  char *path = dub_xasprintf("%s/%s", dir, name);
  json_error_t jerr;
  enum dub_err rc = DUB_OK;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if(!j) {
    bool io = json_error_code(&jerr) == json_error_cannot_open_file;
    set_why(why, io ? dub_xasprintf("%s: cannot read: %s", path, jerr.text)
                    : dub_xasprintf("%s: line %d: %s", path, jerr.line, jerr.text));
    rc = io ? DUB_ERR_IO : DUB_ERR_CONFIG;
    goto out;
  }
  const json_t *y = json_is_object(j) ? json_object_get(j, "year") : NULL;
  if(!json_is_integer(y) || json_integer_value(y) != year) {
    set_why(why,
            dub_xasprintf("%s: \"year\" must be %d, as the file name says", path, year));
    rc = DUB_ERR_CONFIG;
    goto out;
  }
  *doc = j;
  j = NULL;
out:
  json_decref(j);
  free(path);
  return rc;
}

enum dub_err dub_calendar_load_dir(const char *dir, struct dub_calendar **out, char **why)
{
  enum dub_err rc = DUB_OK;
  json_t **docs = NULL;
  size_t n = 0, cap = 0;
  char *inner = NULL;
  struct dirent *ent;

  *out = NULL;
  DIR *d = opendir(dir);
  if(!d) {
    set_why(why, dub_xasprintf("%s: cannot open directory: %s", dir, strerror(errno)));
    return DUB_ERR_IO;
  }
  while((ent = readdir(d))) {
    int year;
    if(!year_file(ent->d_name, &year))
      continue;
    if(n == cap) {
      cap = cap ? cap * 2 : 8;
      docs = dub_xrealloc(docs, cap * sizeof *docs);
    }
    rc = load_file(dir, ent->d_name, year, &docs[n], why);
    if(rc)
      goto out;
    n++;
  }
  rc = dub_calendar_new((const json_t *const *)docs, n, out, &inner);
  if(rc) {
    set_why(why, dub_xasprintf("%s: %s", dir, inner));
    goto out;
  }
out:
  for(size_t i = 0; i < n; i++)
    json_decref(docs[i]);
  free(docs);
  free(inner);
  closedir(d);
  return rc;
}
