package kernels

// selectGo installs the pure-Go kernels (MR=16, NR=6).
func selectGo() {
	Impl, MR, NR = "go", 16, 6
	microFn, decodeFn = microGo, decodeGo
	decodeRowsFn, transposeFn, bf16Fn = decodeRowsGo, transposeGo, bf16Go
}
