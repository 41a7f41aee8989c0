// Exercises the kernels' scalar conversions on the CPU.
// usage: convert DIR
//   writes DIR/e4m3.bin: e4m3_to_float of codes 0..255 (float32)
//   reads DIR/f32.bin, writes DIR/bf16.bin: float_to_bf16 of each value
#include <string>

#include "emu.h"
#include "fp8_gemm.cu"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  std::vector<float> dec(256);
  for (u32 c = 0; c < 256; ++c) dec[c] = fireflyer::e4m3_to_float(c);
  emu_write(dir + "/e4m3.bin", dec);
  auto in = emu_read<float>(dir + "/f32.bin");
  std::vector<u16> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = fireflyer::float_to_bf16(in[i]);
  emu_write(dir + "/bf16.bin", out);
  return 0;
}
