package eplbio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fireflyer-go/fireflyer/eplb"
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
// wrap eplb.ErrSyntax (malformed input, naming line or layer and expert), eplb.ErrLoad
// (values outside float32 range, NaN, ±Inf, negative) or eplb.ErrShape (no
// layers, no experts, ragged rows, more than eplb.MaxCells values); the result
// passes eplb.ValidateWeights.
func ParseWeights(r io.Reader) ([][]float32, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading weights: %v", eplb.ErrSyntax, err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%w: weights larger than %d bytes", eplb.ErrSyntax, MaxInputBytes)
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
	if err := eplb.ValidateWeights(w); err != nil {
		return nil, err
	}
	return w, nil
}

func parseJSONWeights(data []byte) ([][]float32, error) {
	// A 2-D array of n values has n−1 commas: bound the size before decoding
	// (json.Number costs tens of bytes per value).
	if n := bytes.Count(data, []byte{','}) + 1; n > eplb.MaxCells {
		return nil, fmt.Errorf("%w: more than MaxCells (%d) loads", eplb.ErrShape, eplb.MaxCells)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var rows [][]json.Number
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		return nil, fmt.Errorf("%w: weights JSON: %v", eplb.ErrSyntax, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: weights JSON: trailing data after the array", eplb.ErrSyntax)
	}
	w := make([][]float32, len(rows))
	for l, row := range rows {
		if row == nil {
			return nil, fmt.Errorf("%w: weights JSON: layer %d is not an array", eplb.ErrSyntax, l)
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
		if cells += len(fields); cells > eplb.MaxCells {
			return nil, fmt.Errorf("%w: more than MaxCells (%d) loads at line %d", eplb.ErrShape, eplb.MaxCells, line)
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
		return nil, fmt.Errorf("%w: weights CSV line %d: %v", eplb.ErrSyntax, line+1, err)
	}
	return w, nil
}

// parseLoad parses one decimal load into float32.
func parseLoad(s string) (float32, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty value", eplb.ErrSyntax)
	}
	x, err := strconv.ParseFloat(s, 32)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("%w: %q is outside float32 range", eplb.ErrLoad, s)
		}
		return 0, fmt.Errorf("%w: %q is not a number", eplb.ErrSyntax, s)
	}
	return float32(x), nil
}

// ReadPlan decodes a plan from the JSON object written by `fireflyer eplb
// --json` (keys phy2log, log2phy, logcnt, phyrank; other keys such as
// metrics are ignored) and checks it with eplb.ValidatePlan. Errors wrap eplb.ErrSyntax
// or eplb.ErrPlan.
func ReadPlan(r io.Reader) (*eplb.Plan, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading plan: %v", eplb.ErrSyntax, err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("%w: plan larger than %d bytes", eplb.ErrSyntax, MaxInputBytes)
	}
	var p eplb.Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: plan JSON: %v", eplb.ErrSyntax, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: plan JSON: trailing data after the object", eplb.ErrSyntax)
	}
	if err := eplb.ValidatePlan(&p); err != nil {
		return nil, err
	}
	return &p, nil
}
