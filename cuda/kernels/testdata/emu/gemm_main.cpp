// Runs fp8_gemm.cu's kernel on the CPU emulator.
// usage: gemm DIR M N K OUT_BF16 SA_STRIDE_M SA_STRIDE_K
//   reads DIR/{a,sa,b,sb}.bin, writes DIR/d.bin
#include <string>

#include "emu.h"
#include "fp8_gemm.cu"

int main(int argc, char** argv) {
  if (argc != 8) return 2;
  const std::string dir = argv[1];
  const int m = atoi(argv[2]), n = atoi(argv[3]), k = atoi(argv[4]), bf16 = atoi(argv[5]);
  const int sam = atoi(argv[6]), sak = atoi(argv[7]);
  auto a = emu_read<u8>(dir + "/a.bin");
  auto b = emu_read<u8>(dir + "/b.bin");
  auto sa = emu_read<float>(dir + "/sa.bin");
  auto sb = emu_read<float>(dir + "/sb.bin");
  std::vector<unsigned char> d((size_t)m * n * (bf16 ? 2 : 4), 0xFF);  // poisoned
  emu_dim3 grid{(unsigned)(n + 63) / 64, (unsigned)(m + 63) / 64, 1};
  emu_launch(grid, emu_dim3{256, 1, 1}, [&] {
    if (bf16)
      fp8_gemm_nt<64, 64, 1>(d.data(), a.data(), sa.data(), b.data(), sb.data(), m, n, k, k, k, n, sam, sak);
    else
      fp8_gemm_nt<64, 64, 0>(d.data(), a.data(), sa.data(), b.data(), sb.data(), m, n, k, k, k, n, sam, sak);
  });
  emu_write(dir + "/d.bin", d);
  return 0;
}
