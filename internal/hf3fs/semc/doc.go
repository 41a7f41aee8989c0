// Package semc wraps glibc's sem_init, sem_post, sem_timedwait and
// sem_getvalue through cgo, only to check that the pure-Go semaphore of
// package hf3fs interoperates with C (the 3FS daemon and libhf3fs use the
// C calls on the same shared memory). Without cgo it is empty; nothing
// outside tests imports it.
package semc
