# Generates eplb/testdata/upstream_vectors.json: runs upstream
# deepseek-ai/EPLB eplb.py (commit d52c72d, put beside this script; it is not
# part of this project) with torch on CPU over random configurations.
#   python3 gen_upstream_vectors.py   (needs python3-torch)
import json, random, sys, os
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eplb import rebalance_experts

random.seed(7)
torch.manual_seed(7)
cases = []

def add(w, P, G, N, R, full):
    phy2log, log2phy, logcnt = rebalance_experts(w, P, G, N, R)
    cases.append(dict(weight=w.tolist(), replicas=P, groups=G, nodes=N, gpus=R,
                      phy2log=phy2log.tolist(), logcnt=logcnt.tolist(),
                      log2phy=log2phy.tolist() if full else None))

def config(maxrow):
    while True:
        N = random.randint(1, 4); gpn = random.randint(1, 4); gs = random.randint(1, 6)
        m = random.randint(1, 4)
        G = N * gpn; E = G * gs; R = N * m
        if random.random() < 0.25:
            G = max(1, G + random.choice([-1, 1]))  # often groups % nodes != 0 -> global
            if E % G: continue
        ppg_min = -(-E // R)
        ppg = random.randint(ppg_min, ppg_min + 3)
        P = R * ppg
        hier = G % N == 0
        rows = max(G, P // N) if hier else P
        if rows <= maxrow:
            return E, P, G, N, R, hier

# Small rows (<= 16 items sorted): integer loads with many ties; everything compared.
for _ in range(150):
    E, P, G, N, R, hier = config(16)
    L = random.randint(1, 3)
    w = torch.randint(0, random.choice([3, 10, 1000]), (L, E)).float()
    add(w, P, G, N, R, True)
# Longer rows: continuous float32 loads (no cross-expert ties); phy2log and logcnt compared.
for _ in range(60):
    E, P, G, N, R, hier = config(100)
    L = random.randint(1, 3)
    w = (torch.rand(L, E) * 1000).float()
    add(w, P, G, N, R, False)
# Global policy through auto (groups % nodes != 0), short and long rows.
def global_config(maxrow):
    while True:
        N = random.randint(2, 4); G = random.randint(1, 8)
        if G % N == 0: continue
        gs = random.randint(1, 6); E = G * gs
        R = random.randint(1, 8)
        ppg_min = -(-E // R); ppg = random.randint(ppg_min, ppg_min + 3); P = R * ppg
        if P <= maxrow:
            return E, P, G, N, R
for _ in range(40):
    E, P, G, N, R = global_config(16)
    w = torch.randint(0, random.choice([3, 10, 1000]), (random.randint(1, 3), E)).float()
    add(w, P, G, N, R, True)
for _ in range(40):
    E, P, G, N, R = global_config(120)
    w = (torch.rand(random.randint(1, 3), E) * 1000).float()
    add(w, P, G, N, R, False)
# DeepSeek-V3 shape, 4 layers, log-normal loads: hierarchical and global.
w = torch.exp(torch.randn(4, 256)) * 1000
add(w, 288, 8, 4, 32, False)
add(w, 288, 8, 3, 32, False)  # 8 % 3 != 0 -> global
json.dump(dict(source="deepseek-ai/EPLB d52c72d eplb.py, torch %s CPU" % torch.__version__, cases=cases),
          open('upstream_vectors.json', 'w'), separators=(',', ':'))
print(len(cases))
