"""amp-run --cpu-gemms fastest against what amp-run devices promises: where
devices says fastest widens bf16 GEMMs, a bf16 plan's run must say it ran
them widened; elsewhere it must not.
usage: cpu_gemms_fastest.py AMP_RUN BF16_PLAN"""
import subprocess
import sys

amp_run, plan = sys.argv[1], sys.argv[2]
devices = subprocess.run([amp_run, "devices"], capture_output=True, text=True, check=True).stdout
widens = "bf16 with --cpu-gemms fastest: GEMMs" in devices
run = subprocess.run([amp_run, "bench", plan, "--cpu-gemms", "fastest", "--steps", "1",
                      "--warmup", "0", "--repeat", "1"], capture_output=True, text=True, check=True)
noted = "run in f32 on widened operands" in run.stderr
if noted != widens:
    sys.exit(f"devices says fastest {'widens' if widens else 'keeps native'}, but the run "
             f"{'noted' if noted else 'did not note'} widened GEMMs:\n{devices}{run.stderr}")
print("widened" if widens else "native")
