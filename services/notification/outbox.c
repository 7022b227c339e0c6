/* outbox.c - the development provider: each message becomes one file, written once. */
#define _GNU_SOURCE /* O_TMPFILE, syncfs */
#include "provider.h"

#include "core/alloc.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum dub_err mkdirs(const char *path)
{
  char *p = dub_xstrdup(path);
  enum dub_err rc = DUB_OK;
  for(char *s = p + 1; *s && !rc; s++) {
    if(*s != '/')
      continue;
    *s = '\0';
    if(mkdir(p, 0750) && errno != EEXIST)
      rc = DUB_ERR_IO;
    *s = '/';
  }
  if(!rc && mkdir(p, 0750) && errno != EEXIST)
    rc = DUB_ERR_IO;
  free(p);
  return rc;
}

bool notification_outbox_exists(const char *dir, const char *channel, const char *key,
                                const char *ext)
{
  char *path = dub_xasprintf("%s/%s/%s.%s", dir, channel, key, ext);
  bool there = access(path, F_OK) == 0;
  free(path);
  return there;
}

/* Writes all of 'content' to 'fd'. */
static bool write_all(int fd, const char *content)
{
  size_t len = strlen(content), off = 0;
  while(off < len) {
    ssize_t w = write(fd, content + off, len - off);
    if(w <= 0)
      return false;
    off += (size_t)w;
  }
  return true;
}

enum dub_err notification_outbox_write(const char *dir, const char *channel,
                                       const char *key, const char *ext,
                                       const char *content, bool *written)
{
  enum dub_err rc = DUB_OK;
  char *sub = dub_xasprintf("%s/%s", dir, channel);
  char *path = dub_xasprintf("%s/%s.%s", sub, key, ext);
  char proc[64];
  *written = false;
  /* An unnamed file, written, then given its name: a complete file appears at once or
   * not at all, without a temporary name to clean up; linkat() fails with EEXIST if the
   * key was written before (or by a concurrent writer): still exactly one file. */
  int fd = open(sub, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
  if(fd < 0 && errno == ENOENT && !mkdirs(sub))
    fd = open(sub, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
  if(fd < 0) {
    rc = DUB_ERR_IO;
    goto out;
  }
  if(!write_all(fd, content)) {
    rc = DUB_ERR_IO;
    goto out;
  }
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if(linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
    *written = true;
  else if(errno != EEXIST)
    rc = DUB_ERR_IO;
out:
  if(rc)
    dub_log_error("cannot write outbox file in %s: %s", sub, strerror(errno));
  if(fd >= 0)
    close(fd);
  free(path);
  free(sub);
  return rc;
}

enum dub_err notification_outbox_sync(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if(fd < 0)
    return DUB_ERR_IO;
  int r = syncfs(fd);
  close(fd);
  return r ? DUB_ERR_IO : DUB_OK;
}
