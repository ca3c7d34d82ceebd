# From sources to one HDF5 file per dataset split, and recombination splits as index files.


localrules:
    download_source,


rule download_source:
    output:
        "data/raw/{source}/{file}",
    params:
        mirror=config["sources"]["mirror"] or "",
    log:
        "logs/download_source/{source}/{file}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae data download --source {wildcards.source} --out {output} --mirror '{params.mirror}' > {log} 2>&1"


rule generate_dataset:
    output:
        "data/processed/{dataset}/{split}.h5",
    wildcard_constraints:
        dataset=GENERATED,
    params:
        spec=dataset_spec,
    log:
        "logs/generate_dataset/{dataset}/{split}.log",
    benchmark:
        "benchmarks/generate_dataset/{dataset}/{split}.tsv"
    conda:
        "../envs/structae.yaml"
    shell:
        "structae data make --dataset {wildcards.dataset} --split {wildcards.split} --out {output} "
        "--spec {params.spec:q} > {log} 2>&1"


rule convert_dataset:
    input:
        raw=raw_inputs,
    output:
        "data/processed/{dataset}/{split}.h5",
    wildcard_constraints:
        dataset=CONVERTED,
    params:
        spec=dataset_spec,
    log:
        "logs/convert_dataset/{dataset}/{split}.log",
    benchmark:
        "benchmarks/convert_dataset/{dataset}/{split}.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/structae.yaml"
    shell:
        "structae data make --dataset {wildcards.dataset} --split {wildcards.split} --out {output} "
        "--raw {input.raw} --spec {params.spec:q} > {log} 2>&1"


rule split_dataset:
    input:
        split_source,
    output:
        "data/splits/{dataset}/{split}.npz",
    params:
        spec=split_spec,
    log:
        "logs/split_dataset/{dataset}/{split}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae split --split {wildcards.split} --data {input} --out {output} --spec {params.spec:q} "
        "> {log} 2>&1"
