# From sources to one HDF5 file per dataset split, and recombination splits as index files.


localrules:
    download_source,


rule download_source:
    """Fetch one source file (or copy it from sources.mirror) and check its checksum."""
    output:
        "data/raw/{source}/{file}",
    log:
        "logs/download_source/{source}/{file}.log",
    wildcard_constraints:
        source=SOURCE,
        file=SOURCE_FILE,
    conda:
        "../envs/structae.yaml"
    params:
        mirror=config["sources"]["mirror"] or "",
    shell:
        "exec structae data download --source {wildcards.source:q} --out {output:q} --mirror {params.mirror:q} "
        "> {log:q} 2>&1"


rule generate_dataset:
    """Generate one split of an offline dataset into HDF5."""
    output:
        "data/processed/{dataset}/{split}.h5",
    log:
        "logs/generate_dataset/{dataset}/{split}.log",
    benchmark:
        "benchmarks/generate_dataset/{dataset}/{split}.tsv"
    wildcard_constraints:
        dataset=GENERATED,
    conda:
        "../envs/structae.yaml"
    params:
        spec=dataset_spec,
    shell:
        "exec structae data make --dataset {wildcards.dataset:q} --split {wildcards.split:q} --out {output:q} "
        "--spec {params.spec:q} > {log:q} 2>&1"


rule generate_fresh_test:
    """Generate a scene generator's test split anew with another seed (evaluate.fresh_test_seed)."""
    input:
        raw=raw_inputs,
    output:
        "data/fresh/{dataset}/test_seed{seed}.h5",
    log:
        "logs/generate_fresh_test/{dataset}/test_seed{seed}.log",
    wildcard_constraints:
        dataset=SCENE_GENERATED,
        seed=r"\d+",
    conda:
        "../envs/structae.yaml"
    params:
        spec=dataset_spec,
    shell:
        "exec structae data make --dataset {wildcards.dataset:q} --split test --seed {wildcards.seed:q} "
        "--out {output:q} --raw {input.raw:q} --spec {params.spec:q} > {log:q} 2>&1"


rule convert_dataset:
    """Convert one split of downloaded sources (TFRecord, npz, idx) into HDF5."""
    input:
        raw=raw_inputs,
    output:
        "data/processed/{dataset}/{split}.h5",
    log:
        "logs/convert_dataset/{dataset}/{split}.log",
    benchmark:
        "benchmarks/convert_dataset/{dataset}/{split}.tsv"
    wildcard_constraints:
        dataset=CONVERTED,
    conda:
        "../envs/structae.yaml"
    resources:
        mem_mb=2000,
    params:
        spec=dataset_spec,
    shell:
        "exec structae data make --dataset {wildcards.dataset:q} --split {wildcards.split:q} --out {output:q} "
        "--raw {input.raw:q} --spec {params.spec:q} > {log:q} 2>&1"


rule split_dataset:
    """Write a recombination split's index file: train and test rows, and the pivot."""
    input:
        split_source,
    output:
        "data/splits/{dataset}/{split}.npz",
    log:
        "logs/split_dataset/{dataset}/{split}.log",
    conda:
        "../envs/structae.yaml"
    params:
        spec=split_spec,
    shell:
        "exec structae split --split {wildcards.split:q} --data {input:q} --out {output:q} --spec {params.spec:q} "
        "> {log:q} 2>&1"
