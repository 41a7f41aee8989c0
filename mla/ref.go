package mla

import (
	"context"
	"math"
)

// refBackend is the "ref" backend (NewRef): for every query row it walks
// the row's keys one at a time with an online softmax in float32 (running max m, sum l and
// output o rescaled by exp(m_old − m_new)), decoding each cache row from its
// storage dtype with the tensor package's scalar conversions. It follows the
// same schedule and split-KV combine as the fast backend and supports every
// problem NewProblem accepts. It is slow by design: the yardstick the
// conformance suite holds faster backends to.
type refBackend struct{}

// Name returns "ref".
func (refBackend) Name() string { return "ref" }

// Supports returns nil: the ref backend runs every valid problem.
func (refBackend) Supports(p *Problem) error { return nil }

// DefaultNumParts returns NumSMParts(4·GOMAXPROCS, SQ, HQ, h_kv) (see
// PartsAdvisor).
func (refBackend) DefaultNumParts(p *Problem) int { return goParts(p) }

// Decode runs p with schedule s; see Backend.
func (refBackend) Decode(ctx context.Context, p *Problem, s *Schedule, out, lse []float32) error {
	p, err := p.onHost()
	if err != nil {
		return err
	}
	return runSchedule(ctx, p, s, out, lse, refKernel{})
}

type refKernel struct{}

type refScratch struct{ k []float32 }

func (refKernel) newScratch(p *Problem) any { return &refScratch{k: make([]float32, p.Cache.HeadDim)} }

func (refKernel) release(any) {}

func (refKernel) run(scratch any, p *Problem, req, kvh, begin, end int, o, lse []float32) {
	scr := scratch.(*refScratch)
	c, d, dv, hpk := &p.host, p.Cache.HeadDim, p.HeadDimV, p.HeadsPerKV()
	for m := range p.Rows() {
		j, h := m/hpk, kvh*hpk+m%hpk
		q := p.Q[((req*p.SQ+j)*p.HQ+h)*d:][:d]
		om := o[m*dv : (m+1)*dv]
		clear(om)
		mx, l := float32(math.Inf(-1)), float32(0)
		for t := begin; t < min(end, p.Visible(req, j)); t++ {
			k := c.row(int(p.BlockTable[req][t/c.PageSize]), t%c.PageSize, kvh, scr.k)
			var dot float32
			for i, qv := range q {
				dot += qv * k[i]
			}
			sc := dot * p.Scale
			mNew := max(mx, sc)
			alpha := float32(math.Exp(float64(mx - mNew))) // exp(−Inf) = 0 on the first key
			pt := float32(math.Exp(float64(sc - mNew)))
			l = l*alpha + pt
			for i := range om {
				om[i] = om[i]*alpha + pt*k[i]
			}
			mx = mNew
		}
		if l == 0 {
			clear(om)
			lse[m] = float32(math.Inf(-1))
			continue
		}
		for i := range om {
			om[i] /= l
		}
		lse[m] = mx + float32(math.Log(float64(l)))
	}
}
