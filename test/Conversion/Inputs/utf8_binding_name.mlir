func.func @forward(%x: tensor<4x3xf32> {amp.input = "x"}) -> (tensor<4x3xf32> {amp.output = "y\FF"}) {
  %0 = amp.neg %x : tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}
