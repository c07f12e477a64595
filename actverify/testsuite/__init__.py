"""The property suite as pytest test modules, shipped with the package so that it runs from
an installed actverify in any directory:

    pytest --pyargs actverify.testsuite -n 2 --actverify-target mypkg.kernels:sigmoid=sigmoid
    actverify fuzz --minutes 10 --target mypkg.kernels:sigmoid=sigmoid

Each module runs one group of properties (GROUP); actverify's pytest plugin parametrizes its
test over every applicable (property, target, dtype, device), against PyTorch's own entry
points unless --actverify-target names kernels.
"""
