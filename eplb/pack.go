package eplb

import (
	"fmt"
	"math"
	"slices"
)

// packer holds the scratch space of the greedy balanced packing so that it
// runs without allocating once warm.
type packer struct {
	keys     []uint64    // sort keys: descending weight, then ascending index
	weight   []float32   // accumulated weight per pack
	count    []int       // items per pack
	contents []int       // contents[pack*capacity+rank] = item index
	stamp    []uint32    // stamp[label*packs+pack] == gen: pack holds label
	heap     []packEntry // open packs, min-heap by (weight, index)
	k32      []uint32    // radix sort keys
	k32b     []uint32    // radix sort keys, other buffer
	idxb     []int       // radix sort indices, other buffer
	hist     [4][256]int32
	gen      uint32
}

// descKey orders non-negative, non-NaN float32 weights descending and ties by
// ascending index when sorted ascending.
func descKey(w float32, i int) uint64 {
	if w == 0 {
		w = 0 // fold -0 into +0
	}
	return uint64(^math.Float32bits(w))<<32 | uint64(uint32(i))
}

// radixMin is the row length from which sortDesc uses a radix sort.
const radixMin = 32

// sortDesc fills order with the indices of w sorted by weight descending,
// ties by lower index first (a stable descending sort). Short rows use
// slices.Sort on keys that embed the index; longer rows a stable LSD radix
// sort on the float bits (4 passes of 8 bits, passes that cannot reorder
// skipped).
func (pk *packer) sortDesc(w []float32, order []int) {
	n := len(w)
	if n < radixMin {
		pk.keys = grow(pk.keys, n)
		for i, x := range w {
			pk.keys[i] = descKey(x, i)
		}
		slices.Sort(pk.keys)
		for i, k := range pk.keys {
			order[i] = int(uint32(k))
		}
		return
	}
	pk.k32 = grow(pk.k32, n)
	pk.k32b = grow(pk.k32b, n)
	pk.idxb = grow(pk.idxb, n)
	keys, keysB, idx, idxB := pk.k32, pk.k32b, order, pk.idxb
	hist := &pk.hist
	*hist = [4][256]int32{}
	for i, x := range w {
		if x == 0 {
			x = 0 // fold -0 into +0
		}
		k := ^math.Float32bits(x)
		keys[i] = k
		idx[i] = i
		hist[0][k&0xff]++
		hist[1][k>>8&0xff]++
		hist[2][k>>16&0xff]++
		hist[3][k>>24]++
	}
	for pass := range 4 {
		shift := uint(8 * pass)
		h := &hist[pass]
		if int(h[keys[0]>>shift&0xff]) == n {
			continue // every key has the same digit
		}
		var sum int32
		for d := range h {
			c := h[d]
			h[d] = sum
			sum += c
		}
		for i, k := range keys {
			d := k >> shift & 0xff
			p := h[d]
			h[d]++
			keysB[p] = k
			idxB[p] = idx[i]
		}
		keys, keysB = keysB, keys
		idx, idxB = idxB, idx
	}
	if &idx[0] != &order[0] {
		copy(order, idx)
	}
}

// packRow assigns the n = len(w) items of one row to m packs of exactly n/m
// items each (upstream balanced_packing, one row): items in descending weight
// order (stable) each go to the lightest pack that still has room, lowest
// pack index on ties; pack weights accumulate in float32. When n/m == 1 item j
// goes to pack j without sorting, as upstream. order is scratch of length n.
//
// When labels is non-nil (label values in [0, numLabels)), a pack may not
// hold two items with the same label; every label must occur at most m times.
// The item goes to the lightest open pack without its label. If every open
// pack already holds the label, the item goes to the lightest open pack p
// and trades places with an item y of a full pack q, where q lacks the label
// and p lacks y's label (y of the closest weight first); under the
// precondition such a trade always exists.
func (pk *packer) packRow(w []float32, m int, packIdx, rank, order []int, labels []int, numLabels int) {
	n := len(w)
	c := n / m
	if c == 1 {
		for j := range n {
			packIdx[j], rank[j] = j, 0
		}
		return
	}
	pk.sortDesc(w, order)
	pk.weight = grow(pk.weight, m)
	pk.count = grow(pk.count, m)
	pk.contents = grow(pk.contents, n)
	clear(pk.weight)
	clear(pk.count)
	if labels != nil {
		pk.stamp = grow(pk.stamp, numLabels*m)
		pk.gen++
		if pk.gen == 0 { // wrapped: old stamps could alias
			clear(pk.stamp)
			pk.gen = 1
		}
	}
	if labels == nil {
		if m <= linearPacks {
			pk.packLinear(w, m, c, order, packIdx, rank)
		} else {
			pk.packHeap(w, m, c, order, packIdx, rank)
		}
		return
	}
	for _, it := range order {
		best := -1
		for p := range m {
			if pk.count[p] >= c {
				continue
			}
			if labels != nil && pk.stamp[labels[it]*m+p] == pk.gen {
				continue
			}
			if best < 0 || pk.weight[p] < pk.weight[best] {
				best = p
			}
		}
		if best < 0 {
			pk.repair(w, m, c, it, packIdx, rank, labels)
			continue
		}
		pk.put(w, m, c, it, best, packIdx, rank, labels)
	}
}

// packHeap is the unconstrained greedy with the open packs in a min-heap
// keyed by (accumulated weight, pack index): the same choice as a linear scan
// for the lightest open pack with the lowest index on ties (vLLM #30131), in
// O(log m) per item.
func (pk *packer) packHeap(w []float32, m, c int, order, packIdx, rank []int) {
	pk.heap = grow(pk.heap, m)
	h := pk.heap
	for p := range h {
		h[p] = packEntry{p: int32(p)} // all weights 0: index order is a valid heap
	}
	for _, it := range order {
		top := &h[0]
		p := int(top.p)
		packIdx[it], rank[it] = p, int(top.n)
		top.w += w[it]
		top.n++
		if int(top.n) == c {
			pk.weight[p] = top.w
			last := len(h) - 1
			h[0] = h[last]
			h = h[:last]
		}
		// Sift the root down.
		for i := 0; ; {
			l := 2*i + 1
			if l >= len(h) {
				break
			}
			b := l
			if r := l + 1; r < len(h) && h[r].less(h[l]) {
				b = r
			}
			if !h[b].less(h[i]) {
				break
			}
			h[i], h[b] = h[b], h[i]
			i = b
		}
	}
}

// linearPacks is the number of packs up to which packRow scans them linearly
// rather than keeping a heap.
const linearPacks = 16

// packLinear is the unconstrained greedy by a linear scan; a full pack's
// search weight is +Inf so the scan needs no count test. If every open pack
// has also reached +Inf (float32 overflow), the lowest open index is taken,
// as the reference does.
func (pk *packer) packLinear(w []float32, m, c int, order, packIdx, rank []int) {
	key := pk.weight[:m] // search weights; +Inf once full
	inf := float32(math.Inf(1))
	for _, it := range order {
		best, bw := 0, key[0]
		for p := 1; p < m; p++ {
			if key[p] < bw {
				best, bw = p, key[p]
			}
		}
		if pk.count[best] == c { // every open pack overflowed to +Inf
			for best = 0; pk.count[best] == c; best++ {
			}
		}
		packIdx[it], rank[it] = best, pk.count[best]
		key[best] += w[it]
		pk.count[best]++
		if pk.count[best] == c {
			key[best] = inf
		}
	}
}

// packEntry is an open pack in packHeap: accumulated weight, index, count.
type packEntry struct {
	w    float32
	p, n int32
}

// less orders packs by weight, then lower index.
func (a packEntry) less(b packEntry) bool { return a.w < b.w || (a.w == b.w && a.p < b.p) }

// put appends item it to pack p.
func (pk *packer) put(w []float32, m, c, it, p int, packIdx, rank, labels []int) {
	r := pk.count[p]
	packIdx[it], rank[it] = p, r
	pk.contents[p*c+r] = it
	pk.weight[p] += w[it]
	pk.count[p]++
	if labels != nil {
		pk.stamp[labels[it]*m+p] = pk.gen
	}
}

// repair places item it when every open pack already holds its label.
func (pk *packer) repair(w []float32, m, c, it int, packIdx, rank, labels []int) {
	lab := labels[it]
	p := -1
	for q := range m {
		if pk.count[q] < c && (p < 0 || pk.weight[q] < pk.weight[p]) {
			p = q
		}
	}
	bq, br := -1, -1
	var bd float32
	for q := range m {
		if q == p || pk.stamp[lab*m+q] == pk.gen {
			continue
		}
		for r := range pk.count[q] {
			y := pk.contents[q*c+r]
			if pk.stamp[labels[y]*m+p] == pk.gen {
				continue
			}
			d := w[y] - w[it]
			if d < 0 {
				d = -d
			}
			if bq < 0 || d < bd {
				bq, br, bd = q, r, d
			}
		}
	}
	if bq < 0 {
		// Unreachable under the precondition (every label at most m times);
		// keep the plan valid rather than panic.
		pk.put(w, m, c, it, p, packIdx, rank, labels)
		return
	}
	y := pk.contents[bq*c+br]
	// y leaves q for p; it takes y's place in q.
	pk.stamp[labels[y]*m+bq] = 0
	pk.weight[bq] -= w[y]
	pk.put(w, m, c, y, p, packIdx, rank, labels)
	packIdx[it], rank[it] = bq, br
	pk.contents[bq*c+br] = it
	pk.weight[bq] += w[it]
	pk.stamp[lab*m+bq] = pk.gen
}

// grow returns s resized to n, reusing its storage when large enough.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// BalancedPacking packs the n items of each row of weight [X][n] into
// numPacks packs of exactly n/numPacks items, as balanced as the greedy rule
// makes them. It mirrors upstream deepseek-ai/EPLB balanced_packing: items in
// descending weight order (stable: lower index first on ties) each go to the
// open pack with the smallest float32 accumulated weight (lower pack index on
// ties); with one item per pack, item j goes to pack j.
//
// It returns packIndex [X][n] (the pack of each item) and rankInPack [X][n]
// (its position inside the pack, in arrival order). Errors: ErrShape for
// zero rows or ragged rows, ErrLoad for NaN, ±Inf or negative weights,
// ErrConfig unless numPacks > 0 and n % numPacks == 0.
func BalancedPacking(weight [][]float32, numPacks int) (packIndex, rankInPack [][]int, err error) {
	if err := ValidateWeights(weight); err != nil {
		return nil, nil, err
	}
	n := len(weight[0])
	if numPacks <= 0 || n%numPacks != 0 {
		return nil, nil, fmt.Errorf("%w: items (%d) %% packs (%d) != 0", ErrConfig, n, numPacks)
	}
	packIndex = matrix(len(weight), n)
	rankInPack = matrix(len(weight), n)
	var pk packer
	order := make([]int, n)
	for i, row := range weight {
		pk.packRow(row, numPacks, packIndex[i], rankInPack[i], order, nil, 0)
	}
	return packIndex, rankInPack, nil
}

// matrix returns an r × c int matrix backed by one allocation.
func matrix(r, c int) [][]int {
	flat := make([]int, r*c)
	m := make([][]int, r)
	for i := range m {
		m[i] = flat[i*c : (i+1)*c : (i+1)*c]
	}
	return m
}
