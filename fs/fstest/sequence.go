package fstest

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
)

// Op is one step of a request sequence: a write of Len bytes of pattern
// Seed at Off, or a read of Len bytes at Off, each prepped into a batch that
// is submitted and drained when Flush is set (or the batch is full).
type Op struct {
	Write bool  // write (else read)
	Off   int64 // file offset in bytes
	Len   int   // bytes, 1..16384
	Seed  byte  // first byte of the written pattern
	Flush bool  // submit and drain the batch after this op
}

const (
	seqFileSpan = 1 << 18 // offsets stay under 256 KiB (beyond EOF often)
	seqMaxLen   = 1 << 14
	seqEntries  = 8
)

// DecodeOps turns fuzz bytes into a request sequence (6 bytes per op).
func DecodeOps(data []byte) []Op {
	var ops []Op
	for len(data) >= 6 && len(ops) < 200 {
		w := data[0]
		off := int64(binary.LittleEndian.Uint16(data[1:3])) * 4 // up to 256 KiB
		n := int(binary.LittleEndian.Uint16(data[3:5]))%seqMaxLen + 1
		ops = append(ops, Op{Write: w&1 != 0, Off: off, Len: n, Seed: data[5], Flush: w&2 != 0})
		data = data[6:]
	}
	return ops
}

func randomOps(r *rand.Rand, n int) []Op {
	ops := make([]Op, n)
	for i := range ops {
		o := Op{Write: r.IntN(3) == 0, Seed: byte(r.Uint32()), Flush: r.IntN(3) == 0}
		switch r.IntN(4) {
		case 0: // small, unaligned
			o.Off, o.Len = r.Int64N(seqFileSpan), 1+r.IntN(600)
		case 1: // page-aligned
			o.Off, o.Len = r.Int64N(seqFileSpan/4096)*4096, 4096*(1+r.IntN(4))
		default:
			o.Off, o.Len = r.Int64N(seqFileSpan), 1+r.IntN(seqMaxLen)
		}
		ops[i] = o
	}
	return ops
}

// overlaps reports whether o's byte range meets any op in batch: writes
// in flight together complete in any order, so overlapping ones go in
// separate batches.
func overlaps(batch []Op, o Op) bool {
	for _, b := range batch {
		if o.Off < b.Off+int64(b.Len) && b.Off < o.Off+int64(o.Len) {
			return true
		}
	}
	return false
}

// CheckSequence runs ops on the client under test and on the oracle (a mem
// Client) and fails t on any difference in byte counts, errors or data.
// Reads land in separate buffer regions so a batch's results are compared
// after it completes; reads and writes never share a batch and overlapping writes never
// do either, so the outcome is
// deterministic.
func CheckSequence(t *testing.T, c, oracle *fs.Client, ops []Op) {
	t.Helper()
	defer guard(t)
	a := newSide(t, c, "seq", seqEntries*seqMaxLen, seqEntries)
	b := newSide(t, oracle, "seq", seqEntries*seqMaxLen, seqEntries)
	var batch []Op
	flush := func() {
		t.Helper()
		if len(batch) == 0 {
			return
		}
		ra, rb := a.rd, b.rd
		if batch[0].Write {
			ra, rb = a.wr, b.wr
		}
		for i, o := range batch {
			for _, s := range []*side{a, b} {
				reg := must(s.buf.Region(i*seqMaxLen, o.Len))
				if o.Write {
					for j := range reg.Bytes() {
						reg.Bytes()[j] = o.Seed + byte(j*13)
					}
				} else {
					for j := range reg.Bytes() {
						reg.Bytes()[j] = 0x5a
					}
				}
				r := ra
				if s == b {
					r = rb
				}
				if _, err := r.Prep(fs.Req{File: s.f, Off: o.Off, Buf: reg, Tag: uint64(i)}); err != nil {
					t.Fatalf("%s Prep %+v: %v", s.c.Backend(), o, err)
				}
			}
		}
		res := [2][]fs.Completion{make([]fs.Completion, len(batch)), make([]fs.Completion, len(batch))}
		for k, pair := range []struct {
			s *side
			r *fs.Ring
		}{{a, ra}, {b, rb}} {
			if err := pair.r.Submit(); err != nil {
				t.Fatal(err)
			}
			got := 0
			for got < len(batch) {
				n, err := pair.r.Wait(context.Background(), pair.s.out, len(batch)-got)
				if err != nil {
					t.Fatalf("%s Wait: %v", pair.s.c.Backend(), err)
				}
				for _, cp := range pair.s.out[:n] {
					if res[k][cp.Tag].Slot != 0 || res[k][cp.Tag].N != 0 || res[k][cp.Tag].Err != nil {
						t.Fatalf("%s: tag %d completed twice", pair.s.c.Backend(), cp.Tag)
					}
					cp.Slot = -1
					res[k][cp.Tag] = cp
				}
				got += n
			}
		}
		for i, o := range batch {
			x, y := res[0][i], res[1][i]
			if x.N != y.N || (x.Err == nil) != (y.Err == nil) {
				t.Fatalf("op %+v: %s got N=%d err=%v, mem got N=%d err=%v", o, c.Backend(), x.N, x.Err, y.N, y.Err)
			}
			if !o.Write {
				ga := a.buf.Bytes()[i*seqMaxLen : i*seqMaxLen+int(x.N)]
				gb := b.buf.Bytes()[i*seqMaxLen : i*seqMaxLen+int(y.N)]
				if !bytes.Equal(ga, gb) {
					t.Fatalf("op %+v: %s read different bytes than mem", o, c.Backend())
				}
			}
		}
		batch = batch[:0]
	}
	for _, o := range ops {
		if len(batch) > 0 && (batch[0].Write != o.Write || len(batch) == seqEntries || o.Write && overlaps(batch, o)) {
			flush()
		}
		batch = append(batch, o)
		if o.Flush {
			flush()
		}
	}
	flush()
	sa, sb := must(a.f.Size()), must(b.f.Size())
	if sa != sb {
		t.Fatalf("final size %d, mem %d", sa, sb)
	}
}
