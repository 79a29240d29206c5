/*
 * http_min.h -- the hand-written HTTP/1.1 part of the `http` workload that
 * c_baseline and asyncrt's server share, so both do the same parsing work
 * and send the same bytes: a request ends at its blank line (wrk sends GETs
 * without a body), every request gets the same keep-alive "hello world".
 */
#ifndef HTTP_MIN_H
#define HTTP_MIN_H

#define _GNU_SOURCE
#include <string.h>
#include <sys/types.h>

static const char http_min_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";
#define HTTP_MIN_RESPONSE_LEN (sizeof http_min_response - 1)

/* The length of the first whole request in buf[0..len), or 0 if it has not
 * all arrived yet. A body is not expected: a request is its head. */
static inline size_t http_min_request_len(const char *buf, size_t len) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  return end == NULL ? 0 : (size_t)(end - buf) + 4;
}

/* Answers every whole request at the front of in[0..*in_len): appends one
 * response each to out[*out_len..out_cap) while they fit, then moves what
 * is left of `in` (a partial request, or requests not answered yet) to its
 * front. Returns the number of requests answered. */
static inline size_t http_min_answer(char *in, size_t *in_len, char *out, size_t *out_len,
                                     size_t out_cap) {
  size_t used = 0, answered = 0, n;
  while (*out_len + HTTP_MIN_RESPONSE_LEN <= out_cap &&
         (n = http_min_request_len(in + used, *in_len - used)) != 0) {
    memcpy(out + *out_len, http_min_response, HTTP_MIN_RESPONSE_LEN);
    *out_len += HTTP_MIN_RESPONSE_LEN;
    used += n;
    answered++;
  }
  if (used) memmove(in, in + used, *in_len - used);
  *in_len -= used;
  return answered;
}

#endif
