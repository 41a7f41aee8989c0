package eplb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxInputBytes bounds what ParseWeights and ReadPlan read.
const MaxInputBytes = 256 << 20

// ParseWeights reads an expert-load matrix [layers][experts] from r, in
// either of two forms, told apart by the first non-blank byte:
//
//   - JSON: an array of arrays of numbers, one inner array per layer,
//     e.g. [[90,132,40],[20,107,104]];
//   - CSV: one layer per line, loads separated by commas (spaces around
//     them are ignored); blank lines and lines starting with # are skipped.
//
// A leading UTF-8 byte-order mark is ignored.
//
// Values are converted to float32, as upstream rebalance_experts does. Errors
// wrap ErrSyntax (malformed input, naming line or layer and expert), ErrLoad
// (values outside float32 range, NaN, ±Inf, negative) or ErrShape (no
// layers, no experts, ragged rows, more than MaxCells values); the result
// passes ValidateWeights.
func ParseWeights(r io.Reader) ([][]float32, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading weights: %v", ErrSyntax, err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%w: weights larger than %d bytes", ErrSyntax, MaxInputBytes)
	}
	// Spreadsheets often save CSV with a UTF-8 byte-order mark.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(data)
	var w [][]float32
	if len(trimmed) > 0 && trimmed[0] == '[' {
		w, err = parseJSONWeights(trimmed)
	} else {
		w, err = parseCSVWeights(data)
	}
	if err != nil {
		return nil, err
	}
	if err := ValidateWeights(w); err != nil {
		return nil, err
	}
	return w, nil
}

func parseJSONWeights(data []byte) ([][]float32, error) {
	// A 2-D array of n values has n−1 commas: bound the size before decoding
	// (json.Number costs tens of bytes per value).
	if n := bytes.Count(data, []byte{','}) + 1; n > MaxCells {
		return nil, fmt.Errorf("%w: more than MaxCells (%d) loads", ErrShape, MaxCells)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var rows [][]json.Number
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		return nil, fmt.Errorf("%w: weights JSON: %v", ErrSyntax, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: weights JSON: trailing data after the array", ErrSyntax)
	}
	w := make([][]float32, len(rows))
	for l, row := range rows {
		if row == nil {
			return nil, fmt.Errorf("%w: weights JSON: layer %d is not an array", ErrSyntax, l)
		}
		w[l] = make([]float32, len(row))
		for j, num := range row {
			x, err := parseLoad(string(num))
			if err != nil {
				return nil, fmt.Errorf("%w at layer %d expert %d", err, l, j)
			}
			w[l][j] = x
		}
	}
	return w, nil
}

func parseCSVWeights(data []byte) ([][]float32, error) {
	var w [][]float32
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxInputBytes)
	line, cells := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		fields := strings.Split(text, ",")
		if cells += len(fields); cells > MaxCells {
			return nil, fmt.Errorf("%w: more than MaxCells (%d) loads at line %d", ErrShape, MaxCells, line)
		}
		row := make([]float32, len(fields))
		for j, f := range fields {
			x, err := parseLoad(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("%w at line %d field %d", err, line, j+1)
			}
			row[j] = x
		}
		w = append(w, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: weights CSV line %d: %v", ErrSyntax, line+1, err)
	}
	return w, nil
}

// parseLoad parses one decimal load into float32.
func parseLoad(s string) (float32, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty value", ErrSyntax)
	}
	x, err := strconv.ParseFloat(s, 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("%w: %q is outside float32 range", ErrLoad, s)
		}
		return 0, fmt.Errorf("%w: %q is not a number", ErrSyntax, s)
	}
	return float32(x), nil
}

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

// ReadPlan decodes a plan from the JSON object written by `fireflyer eplb
// --json` (keys phy2log, log2phy, logcnt, phyrank; other keys such as
// metrics are ignored) and checks it with ValidatePlan. Errors wrap ErrSyntax
// or ErrPlan.
func ReadPlan(r io.Reader) (*Plan, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading plan: %v", ErrSyntax, err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%w: plan larger than %d bytes", ErrSyntax, MaxInputBytes)
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: plan JSON: %v", ErrSyntax, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: plan JSON: trailing data after the object", ErrSyntax)
	}
	if err := ValidatePlan(&p); err != nil {
		return nil, err
	}
	return &p, nil
}
