/* outbox.c - the development provider: each message becomes one file, written once. */
#include "provider.h"

#include "core/alloc.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* syncfs(2) is Linux's; declared here to keep _GNU_SOURCE out of the build. */
int syncfs(int fd);

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

enum dub_err notification_outbox_write(const char *dir, const char *channel,
                                       const char *key, const char *ext,
                                       const char *content, bool *written)
{
  enum dub_err rc = DUB_OK;
  char *sub = dub_xasprintf("%s/%s", dir, channel);
  char *path = dub_xasprintf("%s/%s.%s", sub, key, ext);
  char *tmp = dub_xasprintf("%s/.%s.tmp", sub, key);
  int fd = -1;
  *written = false;
  if(access(path, F_OK) == 0)
    goto out; /* sent before: exactly one file per key */
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if(fd < 0 && errno == ENOENT && !mkdirs(sub))
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if(fd < 0) {
    rc = DUB_ERR_IO;
    goto out;
  }
  size_t len = strlen(content), off = 0;
  while(off < len) {
    ssize_t w = write(fd, content + off, len - off);
    if(w <= 0)
      break;
    off += (size_t)w;
  }
  if(close(fd) || off != len) {
    rc = DUB_ERR_IO;
    unlink(tmp);
    goto out;
  }
  /* A complete file appears under its name at once, or not at all; link() fails if a
   * concurrent writer got there first: still exactly one file. */
  if(link(tmp, path) == 0)
    *written = true;
  else if(errno != EEXIST)
    rc = DUB_ERR_IO;
  unlink(tmp);
out:
  if(rc)
    dub_log_error("cannot write outbox file in %s: %s", sub, strerror(errno));
  free(tmp);
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
