"""The text model's defaults one at a time, at equal steps (issue 15): where the gap to a plain
torch.nn script (benchmarks/torch_char_lm.py) came from.

    python benchmarks/text_ablation.py fortunes 1500 forget_bias=1 schedule=cosine batching=streams
    python benchmarks/text_ablation.py fortunes 1500 schedule=constant impl=torch

Trains `rnnkit train text`'s model through its own Trainer setup with the given options
(schedule, batching, lr, seed, plus forget_bias, the LSTM's initial forget-gate bias, and impl,
the recurrent implementation) and prints the loss on the whole validation split, read as
`rnnkit evaluate` reads it. No periodic validation (it would only cost time); the final
weights are the ones measured. One thread.
"""

import dataclasses
import sys
import tempfile
import time

import torch

from rnnkit.models.language import evaluate_ids
from rnnkit.tasks.text.options import TextOptions
from rnnkit.tasks.text.task import TASK, build_language_model, prepare_data
from rnnkit.training import Trainer

data_name, steps = sys.argv[1], int(sys.argv[2])
kv = dict(a.split("=", 1) for a in sys.argv[3:])
torch.set_num_threads(1)
options = TextOptions(
    data=None if data_name == "shakespeare" else data_name, steps=steps, threads=1,
    seed=int(kv.get("seed", 0)), lr=float(kv.get("lr", 3e-3)),
    schedule=kv.get("schedule", "wsd"), batching=kv.get("batching", "windows"),
)  # fmt: skip
data = prepare_data(options)
torch.manual_seed(options.seed)
model = build_language_model(options, len(data.tokenizer))
cell = model.rnn.cells[0]
with torch.no_grad():  # the model is built with forget bias 0
    cell.bias_ih[cell.hidden_size : 2 * cell.hidden_size] += float(kv.get("forget_bias", 0.0))
if "impl" in kv:
    model.rnn.impl = kv["impl"]
config = dataclasses.replace(
    TASK.train_config(options, data), progress=False, eval_every=0, checkpoint_every=0
)
train, _ = TASK.batches(options, data)
out = tempfile.mkdtemp(prefix="text-ablation-")
trainer = Trainer(model, TASK.algorithm(options), config, run_dir=out, overwrite=True)
t0 = time.perf_counter()
result = trainer.fit(train)
nats = evaluate_ids(model, data.val).nats
print(f"{data_name} {result.step} steps {kv}: validation {nats:.4f} nats/char "
      f"({time.perf_counter() - t0:.0f} s)")
