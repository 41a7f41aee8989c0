package eplb

import "math"

// hungarian solves square assignment problems (minimum total cost) with the
// O(n³) Kuhn–Munkres algorithm with potentials, reusing its scratch space.
type hungarian struct {
	u, v, minv []int
	p, way     []int
	used       []bool
}

// solve returns, in colOfRow[i], the column assigned to row i of the n × n
// cost matrix cost (row-major) so that the total cost is minimal.
func (h *hungarian) solve(n int, cost []int, colOfRow []int) {
	h.u = grow(h.u, n+1)
	h.v = grow(h.v, n+1)
	h.minv = grow(h.minv, n+1)
	h.p = grow(h.p, n+1)
	h.way = grow(h.way, n+1)
	h.used = grow(h.used, n+1)
	clear(h.u)
	clear(h.v)
	clear(h.p)
	clear(h.way)
	for i := 1; i <= n; i++ {
		h.p[0] = i
		j0 := 0
		for j := range h.minv {
			h.minv[j] = math.MaxInt
			h.used[j] = false
		}
		for {
			h.used[j0] = true
			i0, delta, j1 := h.p[j0], math.MaxInt, 0
			for j := 1; j <= n; j++ {
				if h.used[j] {
					continue
				}
				cur := cost[(i0-1)*n+j-1] - h.u[i0] - h.v[j]
				if cur < h.minv[j] {
					h.minv[j], h.way[j] = cur, j0
				}
				if h.minv[j] < delta {
					delta, j1 = h.minv[j], j
				}
			}
			for j := 0; j <= n; j++ {
				if h.used[j] {
					h.u[h.p[j]] += delta
					h.v[j] -= delta
				} else {
					h.minv[j] -= delta
				}
			}
			j0 = j1
			if h.p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := h.way[j0]
			h.p[j0] = h.p[j1]
			j0 = j1
		}
	}
	for j := 1; j <= n; j++ {
		colOfRow[h.p[j]-1] = j - 1
	}
}

// migrator permutes a new plan's nodes, GPUs and slots to match a previous
// plan as closely as possible.
type migrator struct {
	h        hungarian
	overlap  []int // [R][R]: experts (as a multiset) shared by new GPU i and old GPU j
	start    []int // [E+1] CSR offsets of the old slots of each expert
	fill     []int // [E] CSR fill cursor
	slots    []int // [P] old slots grouped by expert
	cost     []int // square cost matrix scratch
	nodeVal  []int // [D][D] best GPU-level overlap between new node a and old node b
	gpuAsg   []int // [D][D][m] old local GPU for each new local GPU
	nodeAsg  []int // [D] old node of each new node
	gpuOf    []int // [R] old GPU of each new GPU
	newLog   []int // [P]
	newRank  []int // [P]
	placed   []bool
	slotUsed []bool
}

// migrateLayer permutes phy2log and phyrank of one layer in place so that
// the fewest slots differ from prev: nodes are matched to old nodes and GPUs
// inside matched nodes to old GPUs by maximum total shared experts (two
// levels of assignment problems, exact), and inside a matched GPU every
// expert the old GPU held stays in its old slot. Global plans have one node.
func (mg *migrator) migrateLayer(r *resolved, phy2log, phyrank, prev []int) {
	D, m, c := r.nodes, r.gpusPerNode(), r.slotsPerGPU()
	R := r.gpus
	mg.overlap = grow(mg.overlap, R*R)
	clear(mg.overlap)
	// Old slots grouped by expert (CSR, ascending slot order).
	E := r.experts
	mg.start = grow(mg.start, E+1)
	mg.fill = grow(mg.fill, E)
	mg.slots = grow(mg.slots, len(prev))
	clear(mg.start)
	for _, e := range prev {
		mg.start[e+1]++
	}
	for e := range E {
		mg.start[e+1] += mg.start[e]
	}
	copy(mg.fill, mg.start[:E])
	for s, e := range prev {
		mg.slots[mg.fill[e]] = s
		mg.fill[e]++
	}
	// overlap[i][j] = Σ_e min(copies of e on new GPU i, on old GPU j): the
	// t-th copy of e on GPU i matches every old GPU with more than t copies.
	for i := range R {
		g := phy2log[i*c : (i+1)*c]
		for k, e := range g {
			t := 0
			for _, x := range g[:k] {
				if x == e {
					t++
				}
			}
			list := mg.slots[mg.start[e]:mg.start[e+1]]
			for q := 0; q < len(list); {
				j, run := list[q]/c, 0
				for q < len(list) && list[q]/c == j {
					run++
					q++
				}
				if run > t {
					mg.overlap[i*R+j]++
				}
			}
		}
	}
	mg.gpuAsg = grow(mg.gpuAsg, D*D*m)
	mg.nodeVal = grow(mg.nodeVal, D*D)
	mg.cost = grow(mg.cost, max(m*m, D*D))
	for a := range D {
		for b := range D {
			zero := true
			for i := range m {
				for j := range m {
					ov := mg.overlap[(a*m+i)*R+b*m+j]
					mg.cost[i*m+j] = c - ov
					zero = zero && ov == 0
				}
			}
			asg := mg.gpuAsg[(a*D+b)*m : (a*D+b+1)*m]
			if zero {
				for i := range asg {
					asg[i] = i
				}
				mg.nodeVal[a*D+b] = 0
				continue
			}
			mg.h.solve(m, mg.cost[:m*m], asg)
			v := 0
			for i, j := range asg {
				v += mg.overlap[(a*m+i)*R+b*m+j]
			}
			mg.nodeVal[a*D+b] = v
		}
	}
	mg.nodeAsg = grow(mg.nodeAsg, D)
	if D == 1 {
		mg.nodeAsg[0] = 0
	} else {
		ppn := m * c
		for k, v := range mg.nodeVal {
			mg.cost[k] = ppn - v
		}
		mg.h.solve(D, mg.cost[:D*D], mg.nodeAsg)
	}
	mg.gpuOf = grow(mg.gpuOf, R)
	for a, b := range mg.nodeAsg {
		asg := mg.gpuAsg[(a*D+b)*m : (a*D+b+1)*m]
		for i, j := range asg {
			mg.gpuOf[a*m+i] = b*m + j
		}
	}
	// Rewrite the slots: shared experts keep their old slot, the rest fill
	// the free slots of the target GPU in their original order.
	P := len(phy2log)
	mg.newLog = grow(mg.newLog, P)
	mg.newRank = grow(mg.newRank, P)
	mg.placed = grow(mg.placed, c)
	mg.slotUsed = grow(mg.slotUsed, c)
	for i, j := range mg.gpuOf {
		src, srcRank := phy2log[i*c:(i+1)*c], phyrank[i*c:(i+1)*c]
		dst, dstRank := mg.newLog[j*c:(j+1)*c], mg.newRank[j*c:(j+1)*c]
		old := prev[j*c : (j+1)*c]
		clear(mg.placed)
		clear(mg.slotUsed)
		for s, e := range old {
			for k, x := range src {
				if !mg.placed[k] && x == e {
					dst[s], dstRank[s] = x, srcRank[k]
					mg.placed[k], mg.slotUsed[s] = true, true
					break
				}
			}
		}
		s := 0
		for k, x := range src {
			if mg.placed[k] {
				continue
			}
			for mg.slotUsed[s] {
				s++
			}
			dst[s], dstRank[s] = x, srcRank[k]
			mg.slotUsed[s] = true
		}
	}
	copy(phy2log, mg.newLog)
	copy(phyrank, mg.newRank)
}
