package eplb

import "fmt"

// replicator holds the scratch space of replicateRow.
type replicator struct {
	ratio []float32 // w[j] / cnt[j]
	heap  []int     // max-heap of expert indices by (ratio desc, index asc)
}

// before reports whether expert a must be picked before expert b: larger
// float32 ratio, lower index on ties (the first argmax, as torch's CPU kernel).
func (rp *replicator) before(a, b int) bool {
	ra, rb := rp.ratio[a], rp.ratio[b]
	return ra > rb || (ra == rb && a < b)
}

func (rp *replicator) down(i int) {
	h := rp.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		best := l
		if r := l + 1; r < n && rp.before(h[r], h[l]) {
			best = r
		}
		if !rp.before(h[best], h[i]) {
			return
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
}

// replicateRow fills numPhy slots from the n = len(w) logical experts of one
// row (upstream replicate_experts, one row): slot j < n holds expert j with
// rank 0; each later slot goes to the expert with the largest w/cnt (float32
// division, lower index on ties), whose rank is its count before the
// increment. With maxCnt > 0 an expert stops receiving replicas once it has
// maxCnt of them (the caller guarantees n·maxCnt ≥ numPhy). Up to
// linearPicks redundant slots it scans linearly, beyond that it uses a heap;
// both give the same result.
func (rp *replicator) replicateRow(w []float32, numPhy int, phy2log, rank, cnt []int, maxCnt int) {
	if numPhy-len(w) <= linearPicks {
		rp.linearRow(w, numPhy, phy2log, rank, cnt, maxCnt)
	} else {
		rp.heapRow(w, numPhy, phy2log, rank, cnt, maxCnt)
	}
}

// linearPicks is the number of redundant slots up to which replicateRow
// scans for the argmax instead of building a heap (less set-up).
const linearPicks = 16

// initSlots gives every expert its original slot.
func initSlots(n int, phy2log, rank, cnt []int) {
	for j := range n {
		phy2log[j], rank[j], cnt[j] = j, 0, 1
	}
}

// linearRow is replicateRow by a linear argmax scan over cached ratios; a
// capped expert's ratio is −1 so it is never picked (loads are ≥ 0 and an
// uncapped expert always remains).
func (rp *replicator) linearRow(w []float32, numPhy int, phy2log, rank, cnt []int, maxCnt int) {
	n := len(w)
	initSlots(n, phy2log, rank, cnt)
	rp.ratio = grow(rp.ratio, n)
	ratio := rp.ratio
	copy(ratio, w)
	if maxCnt == 1 {
		for j := range ratio {
			ratio[j] = -1
		}
	}
	for i := n; i < numPhy; i++ {
		e, best := 0, ratio[0]
		for j, r := range ratio {
			if r > best {
				e, best = j, r
			}
		}
		phy2log[i], rank[i] = e, cnt[e]
		cnt[e]++
		if maxCnt > 0 && cnt[e] >= maxCnt {
			ratio[e] = -1
		} else {
			ratio[e] = w[e] / float32(cnt[e])
		}
	}
}

// heapRow is replicateRow with the uncapped experts in a max-heap keyed by
// (ratio, lower index first).
func (rp *replicator) heapRow(w []float32, numPhy int, phy2log, rank, cnt []int, maxCnt int) {
	n := len(w)
	initSlots(n, phy2log, rank, cnt)
	if numPhy == n {
		return
	}
	rp.ratio = grow(rp.ratio, n)
	copy(rp.ratio, w)
	rp.heap = rp.heap[:0]
	if maxCnt != 1 {
		for j := range n {
			rp.heap = append(rp.heap, j)
		}
	}
	for i := len(rp.heap)/2 - 1; i >= 0; i-- {
		rp.down(i)
	}
	for i := n; i < numPhy; i++ {
		e := rp.heap[0]
		phy2log[i], rank[i] = e, cnt[e]
		cnt[e]++
		if maxCnt > 0 && cnt[e] >= maxCnt {
			last := len(rp.heap) - 1
			rp.heap[0] = rp.heap[last]
			rp.heap = rp.heap[:last]
		} else {
			rp.ratio[e] = w[e] / float32(cnt[e])
		}
		rp.down(0)
	}
}

// ReplicateExperts replicates the n logical experts of each row of weight
// [X][n] into numPhy physical slots so that the maximum per-replica load
// (weight / replica count) is as small as possible. It mirrors upstream
// deepseek-ai/EPLB replicate_experts: slot j < n holds expert j; every
// further slot goes to the expert with the largest float32 weight/count, the
// lowest index on ties (the D'Hondt rule, optimal for the max load).
//
// It returns phy2log [X][numPhy] (the expert of each slot), rank [X][numPhy]
// (which replica of its expert the slot holds, 0 for the original) and
// logcnt [X][n] (replicas per expert). Errors: ErrShape, ErrLoad as for
// ValidateWeights; ErrConfig unless n ≤ numPhy ≤ MaxReplicas.
func ReplicateExperts(weight [][]float32, numPhy int) (phy2log, rank, logcnt [][]int, err error) {
	if err := ValidateWeights(weight); err != nil {
		return nil, nil, nil, err
	}
	n := len(weight[0])
	if numPhy < n || numPhy > MaxReplicas {
		return nil, nil, nil, fmt.Errorf("%w: physical slots (%d) must be in [experts (%d), %d]", ErrConfig, numPhy, n, MaxReplicas)
	}
	if len(weight) > MaxCells/numPhy {
		return nil, nil, nil, fmt.Errorf("%w: rows × slots (%d × %d) exceeds MaxCells", ErrConfig, len(weight), numPhy)
	}
	phy2log = matrix(len(weight), numPhy)
	rank = matrix(len(weight), numPhy)
	logcnt = matrix(len(weight), n)
	var rp replicator
	for i, row := range weight {
		rp.replicateRow(row, numPhy, phy2log[i], rank[i], logcnt[i], 0)
	}
	return phy2log, rank, logcnt, nil
}
