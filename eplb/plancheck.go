package eplb

import "fmt"

// ValidatePlan checks that p is a well-formed plan: at least one layer,
// expert and slot; Phy2Log and PhyRank [layers][replicas], LogCnt
// [layers][experts], Log2Phy [layers][experts][K] with K ≥ every count;
// every slot holds an expert in range; each expert's count is ≥ 1 and equals
// its number of slots; Log2Phy[l][e][k] is the slot holding rank k of e for
// k < LogCnt[l][e] and −1 beyond. Errors wrap ErrPlan and name the field.
func ValidatePlan(p *Plan) error {
	if p == nil {
		return fmt.Errorf("%w: nil plan", ErrPlan)
	}
	L := len(p.Phy2Log)
	if L == 0 {
		return fmt.Errorf("%w: phy2log has zero layers", ErrPlan)
	}
	P := len(p.Phy2Log[0])
	if P == 0 {
		return fmt.Errorf("%w: phy2log has zero replicas", ErrPlan)
	}
	if len(p.PhyRank) != L || len(p.LogCnt) != L || len(p.Log2Phy) != L {
		return fmt.Errorf("%w: phy2log, phyrank, logcnt and log2phy have %d, %d, %d and %d layers", ErrPlan, L, len(p.PhyRank), len(p.LogCnt), len(p.Log2Phy))
	}
	E := len(p.LogCnt[0])
	if E == 0 {
		return fmt.Errorf("%w: logcnt has zero experts", ErrPlan)
	}
	K := -1
	for l := range L {
		if len(p.Phy2Log[l]) != P || len(p.PhyRank[l]) != P {
			return fmt.Errorf("%w: layer %d: phy2log/phyrank rows must have %d replicas", ErrPlan, l, P)
		}
		if len(p.LogCnt[l]) != E || len(p.Log2Phy[l]) != E {
			return fmt.Errorf("%w: layer %d: logcnt/log2phy rows must have %d experts", ErrPlan, l, E)
		}
		for e := range E {
			if K < 0 {
				K = len(p.Log2Phy[l][e])
			}
			if len(p.Log2Phy[l][e]) != K {
				return fmt.Errorf("%w: layer %d expert %d: log2phy row has %d entries, want %d", ErrPlan, l, e, len(p.Log2Phy[l][e]), K)
			}
			if c := p.LogCnt[l][e]; c < 1 || c > K {
				return fmt.Errorf("%w: layer %d expert %d: logcnt %d outside [1, %d]", ErrPlan, l, e, c, K)
			}
		}
		total := 0
		for _, c := range p.LogCnt[l] {
			total += c
		}
		if total != P {
			return fmt.Errorf("%w: layer %d: logcnt sums to %d, want replicas %d", ErrPlan, l, total, P)
		}
		for s, e := range p.Phy2Log[l] {
			if e < 0 || e >= E {
				return fmt.Errorf("%w: layer %d slot %d: phy2log %d outside [0, %d)", ErrPlan, l, s, e, E)
			}
			k := p.PhyRank[l][s]
			if k < 0 || k >= p.LogCnt[l][e] {
				return fmt.Errorf("%w: layer %d slot %d: phyrank %d outside [0, logcnt %d)", ErrPlan, l, s, k, p.LogCnt[l][e])
			}
			if p.Log2Phy[l][e][k] != s {
				return fmt.Errorf("%w: layer %d slot %d: log2phy[%d][%d] is %d", ErrPlan, l, s, e, k, p.Log2Phy[l][e][k])
			}
		}
		for e, row := range p.Log2Phy[l] {
			for k := p.LogCnt[l][e]; k < K; k++ {
				if row[k] != -1 {
					return fmt.Errorf("%w: layer %d expert %d: log2phy[%d] is %d, want -1 beyond logcnt", ErrPlan, l, e, k, row[k])
				}
			}
		}
	}
	return nil
}
