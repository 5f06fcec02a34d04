"""Statistics and refinement on trained runs, pure numpy: EDFs, bands and KS tests (`edf`),
which models count (`runs`), random-search efficiency (`minofk`), sample-size planning
(`plan`), trends (`trends`), the quantized linear fit (`fit`), splits (`expr`, `refine`), and
their outputs (`plots`, `report`)."""
