package dsv3

import (
	"fmt"
	"math"
	"sort"
)

// Sigmoid returns 1/(1+e^−x) in float32.
func Sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// Route is DeepSeek-V3's noaux_tc router for one token (inference/model.py
// Gate.forward). scores are the sigmoid scores [n_routed_experts]; bias is
// e_score_correction_bias [n_routed_experts], used for selection only. It
// writes the chosen expert ids into topkIdx [num_experts_per_tok] and their
// weights into weights [num_experts_per_tok]: the unbiased scores of the
// chosen experts, divided by their sum (norm_topk_prob), times
// routed_scaling_factor. Selection: group score = sum of the two largest
// biased scores of each of n_group groups; the topk_group best groups are
// kept; the top-k biased scores among them win. Ties go to the lower index.
func Route(c Config, scores, bias []float32, topkIdx []int32, weights []float32) error {
	e, k := c.NRoutedExperts, c.NumExpertsPerTok
	if len(scores) != e || len(bias) != e || len(topkIdx) != k || len(weights) != k {
		return fmt.Errorf("%w: Route: scores %d, bias %d (want %d), topkIdx %d, weights %d (want %d)",
			ErrConfig, len(scores), len(bias), e, len(topkIdx), len(weights), k)
	}
	per := e / c.NGroup
	biased := make([]float32, e)
	for i := range biased {
		biased[i] = scores[i] + bias[i]
	}
	type scored struct {
		idx int
		v   float32
	}
	groups := make([]scored, c.NGroup)
	for g := range groups {
		best, second := float32(math.Inf(-1)), float32(math.Inf(-1))
		for _, v := range biased[g*per : (g+1)*per] {
			if v > best {
				best, second = v, best
			} else if v > second {
				second = v
			}
		}
		groups[g] = scored{g, best + second}
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].v > groups[j].v })
	cand := make([]scored, 0, c.TopKGroup*per)
	kept := make([]bool, c.NGroup)
	for _, g := range groups[:c.TopKGroup] {
		kept[g.idx] = true
	}
	for g := 0; g < c.NGroup; g++ {
		if kept[g] {
			for i := g * per; i < (g+1)*per; i++ {
				cand = append(cand, scored{i, biased[i]})
			}
		}
	}
	sort.SliceStable(cand, func(i, j int) bool { return cand[i].v > cand[j].v })
	var sum float32
	for i := 0; i < k; i++ {
		topkIdx[i] = int32(cand[i].idx)
		weights[i] = scores[cand[i].idx]
		sum += weights[i]
	}
	for i := range weights {
		if c.NormTopKProb && sum > 0 {
			weights[i] /= sum
		}
		weights[i] *= float32(c.RoutedScalingFactor)
	}
	return nil
}

// RouteWeights64 recomputes, in float64, the weights of an already chosen
// set of experts from float64 sigmoid scores: the reference path of the demo
// check uses the fast path's expert choice and its own weights.
func RouteWeights64(c Config, scores []float64, topkIdx []int32) []float64 {
	w := make([]float64, len(topkIdx))
	var sum float64
	for i, e := range topkIdx {
		w[i] = scores[e]
		sum += w[i]
	}
	for i := range w {
		if c.NormTopKProb && sum > 0 {
			w[i] /= sum
		}
		w[i] *= c.RoutedScalingFactor
	}
	return w
}
