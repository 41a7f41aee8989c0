// Package fstest is the conformance suite every fs backend runs, in the
// style of gonum's testblas: a backend proves itself by passing it. Each
// case runs the same requests on the backend under test and on the mem
// backend (the oracle) and compares byte counts, errors and data. Run takes
// Clients of any kind; RunBackend certifies any fs.Backend value (a third
// party's, or a wrapper such as fs/errorfs).
//
// Upstream behaviour checked: deepseek-ai/3FS src/lib/api/hf3fs_usrbio.h
// (prep_io errors, short reads at EOF, zero-filled holes, io_depth
// batching).
//
// Where it sits: a check (docs/architecture.md); only tests import it.
package fstest
