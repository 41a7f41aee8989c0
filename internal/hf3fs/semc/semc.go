//go:build cgo && linux

package semc

/*
#cgo LDFLAGS: -lpthread
#include <errno.h>
#include <semaphore.h>
#include <time.h>

static int semc_init(void *p, unsigned v) { return sem_init((sem_t *)p, 1, v) == 0 ? 0 : errno; }
static int semc_post(void *p) { return sem_post((sem_t *)p) == 0 ? 0 : errno; }
static int semc_getvalue(void *p) { int v = -1; sem_getvalue((sem_t *)p, &v); return v; }
static int semc_timedwait(void *p, long ms) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
	int r;
	while ((r = sem_timedwait((sem_t *)p, &ts)) == -1 && errno == EINTR) {}
	return r == 0 ? 0 : errno;
}
*/
import "C"

import (
	"syscall"
	"time"
	"unsafe"
)

// Size is sizeof(sem_t).
const Size = C.sizeof_sem_t

// Init runs sem_init(p, 1, v) (process-shared).
func Init(p unsafe.Pointer, v uint32) error { return errno(C.semc_init(p, C.uint(v))) }

// Post runs sem_post(p).
func Post(p unsafe.Pointer) error { return errno(C.semc_post(p)) }

// Value runs sem_getvalue(p).
func Value(p unsafe.Pointer) int { return int(C.semc_getvalue(p)) }

// TimedWait runs sem_timedwait(p, now+d) on CLOCK_REALTIME; it returns
// syscall.ETIMEDOUT on timeout.
func TimedWait(p unsafe.Pointer, d time.Duration) error {
	return errno(C.semc_timedwait(p, C.long(d.Milliseconds())))
}

func errno(e C.int) error {
	if e == 0 {
		return nil
	}
	return syscall.Errno(e)
}
