/* allow.c - client address allow-lists: "127.0.0.0/8,::1,10.2.3.4" and the like, for
 * routes that take no bearer token but must not be open to every caller. */
#include "http.h"

#include "core/alloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct net {
  uint8_t addr[16]; /* IPv4 as IPv4-mapped IPv6: ::ffff:a.b.c.d */
  unsigned bits;    /* prefix length over the 16 bytes */
};

struct dub_http_allow {
  struct net *nets;
  size_t n;
};

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parses one "address[/bits]"; false when it is neither IPv4 nor IPv6 or the prefix is
 * out of range. */
static bool parse_net(const char *text, size_t len, struct net *out)
{
  char buf[INET6_ADDRSTRLEN + 5];
  if(len == 0 || len >= sizeof buf)
    return false;
  memcpy(buf, text, len);
  buf[len] = '\0';
  char *slash = strchr(buf, '/');
  long bits = -1;
  if(slash) {
    char *end = NULL;
    *slash = '\0';
    if(!slash[1] || slash[1] == '-' || slash[1] == '+')
      return false;
    bits = strtol(slash + 1, &end, 10);
    if(*end)
      return false;
  }
  struct in_addr v4;
  if(inet_pton(AF_INET, buf, &v4) == 1) {
    if(bits > 32)
      return false;
    memcpy(out->addr, v4_mapped, 12);
    memcpy(out->addr + 12, &v4, 4);
    out->bits = 96 + (unsigned)(bits < 0 ? 32 : bits);
    return true;
  }
  if(inet_pton(AF_INET6, buf, out->addr) == 1) {
    if(bits > 128)
      return false;
    out->bits = (unsigned)(bits < 0 ? 128 : bits);
    return true;
  }
  return false;
}

enum dub_err dub_http_allow_parse(const char *list, struct dub_http_allow **out,
                                  char **why)
{
  struct dub_http_allow *a = dub_xcalloc(1, sizeof *a);
  const char *p = list ? list : "";
  *out = NULL;
  for(;;) {
    p += strspn(p, " \t");
    size_t len = strcspn(p, ",");
    while(len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    if(len) {
      struct net net;
      if(!parse_net(p, len, &net)) {
        *why =
            dub_xasprintf("'%.*s' is not an IPv4 or IPv6 address or prefix", (int)len, p);
        dub_http_allow_free(a);
        return DUB_ERR_CONFIG;
      }
      a->nets = dub_xrealloc(a->nets, (a->n + 1) * sizeof *a->nets);
      a->nets[a->n++] = net;
    }
    p += strcspn(p, ",");
    if(!*p)
      break;
    p++;
  }
  if(a->n == 0) {
    *why = dub_xstrdup("the allow-list is empty");
    dub_http_allow_free(a);
    return DUB_ERR_CONFIG;
  }
  *out = a;
  return DUB_OK;
}

static bool in_net(const struct net *net, const uint8_t addr[16])
{
  unsigned whole = net->bits / 8, rest = net->bits % 8;
  if(memcmp(net->addr, addr, whole) != 0)
    return false;
  if(!rest)
    return true;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (net->addr[whole] & mask) == (addr[whole] & mask);
}

bool dub_http_allow_match(const struct dub_http_allow *a, const struct sockaddr *sa)
{
  uint8_t addr[16];
  if(!a || !sa)
    return false;
  if(sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    memcpy(addr, v4_mapped, 12);
    memcpy(addr + 12, &in->sin_addr, 4);
  } else if(sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    memcpy(addr, &in6->sin6_addr, 16);
  } else {
    return false;
  }
  for(size_t i = 0; i < a->n; i++)
    if(in_net(&a->nets[i], addr))
      return true;
  return false;
}

void dub_http_allow_free(struct dub_http_allow *a)
{
  if(!a)
    return;
  free(a->nets);
  free(a);
}
