# Shared by the experiment scripts; source it after defining train_cgan and train_diffusion.
# train_pair OUT: both generators, one after the other, or with PARALLEL=1 at once on one
# thread each (a 2-core machine), their logs in OUT/train-*.log.
train_pair() {
  if [ "${PARALLEL:-0}" = 1 ]; then
    CXRAUG_THREADS=1 train_cgan > "$1/train-cgan.log" 2>&1 &
    local cgan=$!
    CXRAUG_THREADS=1 train_diffusion > "$1/train-diffusion.log" 2>&1 &
    local diffusion=$!
    wait "$cgan" && wait "$diffusion"
  else
    train_cgan
    train_diffusion
  fi
}
