package mla

import (
	"context"
	"math"
	"slices"
	"sync"

	"github.com/fireflyer-go/fireflyer/internal/par"
)

// TopKIndices selects, for each of rows rows of logits [rows, cols]
// (row-major float32, the indexer's output: gemm.MQALogits,
// gemm.PagedMQALogits), the k columns with the largest logits, and writes
// them to dst [rows, k] int32 in the index layout SparseDecode and
// SparsePrefill take (−1 = no token): DeepSeek-V3.2's
// index_score.topk(min(index_topk, n)).indices, with upstream's
// implementation-defined ties fixed.
//
// The rule, exact and deterministic:
//   - Row r considers columns [0, lengths[r]) (all cols when lengths is
//     nil); a column holding −Inf or NaN is invalid and never selected.
//   - The valid columns are ranked by larger logit first and, for equal
//     logits, lower column first (+0 and −0 are equal); the first k of
//     that ranking are written in that order.
//   - A row with fewer than k valid columns gets all of them, then −1 up
//     to k.
//
// The column numbers are logical positions; SparseDecode wants positions in
// its paged cache (block·page_size + offset), so translate them through
// the block table before decoding. Rows run in parallel on GOMAXPROCS
// goroutines; a row is a radix select over the float32 bits (linear in
// cols) followed by a sort of the k selected. Errors: *ArgError wrapping
// ErrShape for negative dimensions, len(logits) != rows·cols, len(dst) !=
// rows·k or lengths of the wrong size or with an entry outside [0, cols].
func TopKIndices(dst []int32, logits []float32, rows, cols, k int, lengths []int32) error {
	if rows < 0 || cols < 0 || k < 0 || cols > math.MaxInt32 {
		return argErr("logits", ErrShape, "rows %d, cols %d, k %d: want ≥ 0 (cols < 2^31)", rows, cols, k)
	}
	if rows > 0 && (cols > math.MaxInt/rows || k > math.MaxInt/rows) {
		return argErr("logits", ErrShape, "[%d, %d] too large", rows, cols)
	}
	if len(logits) != rows*cols {
		return argErr("logits", ErrShape, "%d values, want [%d, %d] = %d", len(logits), rows, cols, rows*cols)
	}
	if len(dst) != rows*k {
		return argErr("dst", ErrShape, "%d entries, want [%d, %d] = %d", len(dst), rows, k, rows*k)
	}
	if lengths != nil {
		if len(lengths) != rows {
			return argErr("lengths", ErrShape, "%d entries, want rows %d", len(lengths), rows)
		}
		for r, n := range lengths {
			if n < 0 || int(n) > cols {
				return argErr("lengths", ErrShape, "lengths[%d] = %d outside [0, cols %d]", r, n, cols)
			}
		}
	}
	if k == 0 || rows == 0 {
		return nil
	}
	one := func(r int, s *topkScratch) {
		n := cols
		if lengths != nil {
			n = int(lengths[r])
		}
		s.row(dst[r*k:(r+1)*k], logits[r*cols:r*cols+n])
	}
	if rows == 1 {
		s := topkPool.Get().(*topkScratch)
		one(0, s)
		topkPool.Put(s)
		return nil
	}
	return par.For(context.Background(), rows, 0, func() (func(int), func()) {
		s := topkPool.Get().(*topkScratch)
		return func(r int) { one(r, s) }, func() { topkPool.Put(s) }
	})
}

// TopKRow is TopKIndices for one row: it writes the top len(dst) columns
// of row (same rule) into dst and returns how many are valid (the rest is
// −1). It allocates nothing once warm and is safe for concurrent use.
func TopKRow(dst []int32, row []float32) int {
	if len(dst) == 0 {
		return 0
	}
	s := topkPool.Get().(*topkScratch)
	n := s.row(dst, row)
	topkPool.Put(s)
	return n
}

var topkPool = sync.Pool{New: func() any { return new(topkScratch) }}

// topkScratch is one row's working memory.
type topkScratch struct {
	keys []uint32 // order-preserving keys of the row, 0 for invalid
	cand []int32  // candidate columns of the current radix digit
	sel  []uint64 // selected (key<<32 | ^column), sorted descending
	hist [1 << 11]int32
}

// orderKey maps a float32 to a uint32 that orders like the value (−0 and
// +0 equal), with 0 reserved for the invalid −Inf and NaN.
func orderKey(v float32) uint32 {
	if v != v || v < -math.MaxFloat32 {
		return 0
	}
	if v == 0 {
		v = 0 // −0 → +0
	}
	u := math.Float32bits(v)
	if u&0x80000000 != 0 {
		return ^u
	}
	return u | 0x80000000
}

// row selects the top len(dst) of row into dst and returns the valid count.
func (s *topkScratch) row(dst []int32, row []float32) int {
	k := len(dst)
	s.keys = slices.Grow(s.keys[:0], len(row))[:len(row)]
	clear(s.hist[:])
	valid := 0
	for i, v := range row {
		key := orderKey(v)
		s.keys[i] = key
		if key != 0 {
			valid++
			s.hist[key>>21]++
		}
	}
	s.sel = s.sel[:0]
	if valid <= k {
		for i, key := range s.keys {
			if key != 0 {
				s.sel = append(s.sel, uint64(key)<<32|uint64(^uint32(i)))
			}
		}
	} else {
		s.selectTop(k)
	}
	slices.Sort(s.sel)
	n := len(s.sel)
	for i := range n {
		dst[i] = int32(^uint32(s.sel[n-1-i]))
	}
	for i := n; i < k; i++ {
		dst[i] = -1
	}
	return n
}

// selectTop fills s.sel with the k largest (key, −column) pairs of s.keys,
// given s.hist of the top 11 key bits: a three-digit (11, 11, 10 bits)
// radix select for the k-th largest key T, then every column with key > T
// and the lowest-numbered columns with key == T.
func (s *topkScratch) selectTop(k int) {
	need := int32(k) // still to take at or below the current prefix
	// Digit 1: bits 31..21 over the whole row.
	d1 := pickDigit(&s.hist, need, len(s.hist))
	need -= above(&s.hist, d1, len(s.hist))
	s.cand = s.cand[:0]
	for i, key := range s.keys {
		if key != 0 && key>>21 == d1 {
			s.cand = append(s.cand, int32(i))
		}
	}
	// Digit 2: bits 20..10 over the candidates.
	clear(s.hist[:])
	for _, i := range s.cand {
		s.hist[s.keys[i]>>10&0x7FF]++
	}
	d2 := pickDigit(&s.hist, need, 1<<11)
	need -= above(&s.hist, d2, 1<<11)
	// Digit 3: bits 9..0 over the candidates sharing digit 2.
	clear(s.hist[:1<<10])
	for _, i := range s.cand {
		if key := s.keys[i]; key>>10&0x7FF == d2 {
			s.hist[key&0x3FF]++
		}
	}
	d3 := pickDigit(&s.hist, need, 1<<10)
	need -= above(&s.hist, d3, 1<<10)
	thr := d1<<21 | d2<<10 | d3
	// need ties at thr are taken, lowest columns first.
	for i, key := range s.keys {
		if key > thr || key == thr && need > 0 {
			if key == thr {
				need--
			}
			s.sel = append(s.sel, uint64(key)<<32|uint64(^uint32(i)))
		}
	}
}

// pickDigit returns the largest bucket d (of buckets) such that the
// buckets ≥ d hold at least need entries.
func pickDigit(h *[1 << 11]int32, need int32, buckets int) uint32 {
	var acc int32
	for d := buckets - 1; d > 0; d-- {
		if acc += h[d]; acc >= need {
			return uint32(d)
		}
	}
	return 0
}

// above returns the number of entries in the buckets in (d, buckets).
func above(h *[1 << 11]int32, d uint32, buckets int) int32 {
	var n int32
	for _, c := range h[d+1 : buckets] {
		n += c
	}
	return n
}
