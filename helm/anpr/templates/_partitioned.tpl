{{/*
A StatefulSet whose pods split the cameras: pod <name>-<i> runs with ANPR_PARTITION=i (its
ordinal, taken from the pod name) and ANPR_PARTITIONS=replicas; plus the headless Service the
StatefulSet needs. Takes a dict: root, component, values, binary, env (a list of env entries).
*/}}
{{- define "anpr.partitionedStatefulSet" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := include "anpr.componentName" (list $root .component) -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $name }}
  labels:
    {{- include "anpr.componentLabels" (list $root .component) | nindent 4 }}
spec:
  serviceName: {{ $name }}
  replicas: {{ $v.replicas }}
  # The pods are independent (each owns its cameras): start and stop them all at once.
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
  selector:
    matchLabels:
      {{- include "anpr.selectorLabels" (list $root .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "anpr.componentLabels" (list $root .component) | nindent 8 }}
      annotations:
        # The partition count is part of the pod spec: changing `replicas` restarts every pod
        # with the new count, so each camera keeps exactly one owner.
        anpr/partitions: {{ $v.replicas | quote }}
        {{- with include "anpr.podAnnotations" (list $root $v) }}
        {{- . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "anpr.podCommon" $root | nindent 6 }}
      {{- with $v.terminationGracePeriodSeconds }}
      terminationGracePeriodSeconds: {{ . }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "anpr.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- include "anpr.partitionedCommand" (printf "/usr/local/bin/%s" .binary) | nindent 12 }}
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: ANPR_PARTITIONS
              value: {{ $v.replicas | quote }}
            - name: ANPR_CONFIG_URL
              value: {{ include "anpr.configUrl" $root | quote }}
            {{- include "anpr.commonEnv" $root | nindent 12 }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: 9090
              protocol: TCP
          {{- include "anpr.httpProbes" $root | nindent 10 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "anpr.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "anpr.volumes" $root | nindent 8 }}
      {{- include "anpr.scheduling" $v | nindent 6 }}
---
# Headless: the StatefulSet's pod identities (and a per-pod address for metrics).
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "anpr.componentLabels" (list $root .component) | nindent 4 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    {{- include "anpr.selectorLabels" (list $root .component) | nindent 4 }}
  ports:
    - name: http
      port: 9090
      targetPort: http
      protocol: TCP
{{- end -}}
