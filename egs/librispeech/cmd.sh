# How the GPU training stages (ensemble, student) run: the command that stands for `asrdistill`.
# One process (CPU, or the GPU CUDA_VISIBLE_DEVICES names):
train_cmd="asrdistill"
# One node, all its GPUs (data parallel; every rank takes its slice of each member's batch):
#   train_cmd="torchrun --nproc-per-node=$(nvidia-smi -L | wc -l) $(which asrdistill)"
# Several nodes (run the recipe's stage on each; NODE_RANK = 0..NNODES-1, MASTER = the first node):
#   train_cmd="torchrun --nnodes=$NNODES --node-rank=$NODE_RANK --nproc-per-node=8 --rdzv-backend=c10d --rdzv-endpoint=$MASTER:29500 $(which asrdistill)"
